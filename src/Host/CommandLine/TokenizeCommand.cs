using System.CommandLine;
using System.Text.Json;
using DistributedInference.Host.Inference;
using DistributedInference.Models;
using DistributedInference.Models.Auto;
using DistributedInference.Models.Runtime;

namespace DistributedInference.Host.CommandLine;

/// <summary>
/// <c>di tokenize</c>: a model's own tokenizer on prompts, one JSON line per prompt (<c>index</c>, <c>ids</c>,
/// <c>tokens</c>): to see what a model is given, and to compare with Hugging Face's tokenizers.
/// </summary>
public static class TokenizeCommand
{
    public static Command Create()
    {
        var model = new Option<string>("--model") { Description = "Hugging Face model folder (its tokenizer.json or vocab.txt), or gpt2", Required = true };
        var prompts = SharedOptions.Prompts("texts to tokenize (a text that starts with - goes in --prompts-file)");
        var promptsFile = new Option<string?>("--prompts-file") { Description = "text file, one prompt a line" };
        var noSpecial = new Option<bool>("--no-special-tokens") { Description = "leave out the tokens the post-processor adds (BOS, [CLS] ... [SEP])" };
        var command = new Command("tokenize", "Token ids and tokens of prompts, with a model's own tokenizer (JSON lines).") { model, prompts, promptsFile, noSpecial };
        command.SetAction((result, _) => UserErrors.Run(
            async () =>
            {
                LibTorch.Initialize();
                var source = AutoModelSource.Resolve(result.GetValue(model)!);
                var tokenizer = source.Tokenizer ?? throw new InvalidInputException($"{source.Name}: no tokenizer (give a folder with tokenizer.json)");
                var texts = ReadPrompts(result.GetValue(prompts), result.GetValue(promptsFile));
                var output = result.InvocationConfiguration.Output;
                for (var i = 0; i < texts.Count; i++)
                {
                    var ids = tokenizer.Encode(texts[i], addSpecialTokens: !result.GetValue(noSpecial));
                    await output.WriteLineAsync(JsonLines.Serialize(new { index = i, ids, tokens = tokenizer.Tokens(ids) }));
                }

                return 0;
            },
            result.InvocationConfiguration.Error));
        return command;
    }

    private static IReadOnlyList<string> ReadPrompts(string[]? inline, string? file)
    {
        if ((inline is { Length: > 0 }) == (file is not null))
        {
            throw new InvalidInputException("give exactly one of --prompts, --prompts-file");
        }

        if (inline is { Length: > 0 })
        {
            return inline;
        }

        return InputChecks.PromptLines(file!);
    }
}
