using System.CommandLine;
using System.Globalization;
using System.Text.Json.Nodes;
using DistributedInference.Models;
using DistributedInference.Models.Templates;

namespace DistributedInference.Host.CommandLine;

/// <summary>
/// <c>di chat render --template FILE|DIR --input F.json [--now ISO-TIME]</c>: a chat template applied to a conversation
/// as transformers' <c>apply_chat_template(..., tokenize=False)</c> does, the text printed exactly (no newline added).
/// <c>F.json</c> is <c>{"messages", "tools", "add_generation_prompt", ...}</c>: every other key is a template variable
/// (keys of an <c>extra_context</c> object too, the fixtures' name for them). A template's <c>raise_exception</c>, or any
/// other error of the template on this input, is one line on stderr and exit code 2.
/// </summary>
public static class ChatCommand
{
    public static Command Create()
    {
        var template = new Option<string>("--template")
        {
            Description = "a model folder (chat_template.jinja, else tokenizer_config.json's chat_template), a tokenizer_config.json, or a template file; bos/eos from the folder's tokenizer_config.json",
            HelpName = "FILE|DIR",
            Required = true,
        };
        var input = new Option<string>("--input")
        {
            Description = "JSON file: {\"messages\": [...], \"tools\": [...], \"add_generation_prompt\": true, other keys = template variables}",
            HelpName = "F.json",
            Required = true,
        };
        var now = new Option<string?>("--now")
        {
            Description = "the clock strftime_now reads, as an ISO 8601 time (2025-03-14T09:26:53); default: this machine's local time",
            HelpName = "ISO-TIME",
        };
        var render = new Command("render", "Render a chat template on a conversation, as transformers' apply_chat_template(tokenize=False); prints the text exactly.") { template, input, now };
        render.SetAction((result, _) => UserErrors.Run(
            async () =>
            {
                var clock = ParseNow(result.GetValue(now));
                var conversation = ReadInput(result.GetValue(input)!);
                var options = new TemplateRenderOptions { Now = clock is { } fixedTime ? () => fixedTime : () => DateTime.Now };
                string text;
                try
                {
                    text = HuggingFaceChatTemplate.Load(result.GetValue(template)!).Apply(conversation, options);
                }
                catch (TemplateException e)
                {
                    // A template that does not parse, or fails (raise_exception) on this conversation: the user's to fix.
                    throw new InvalidInputException(e.Message);
                }

                await result.InvocationConfiguration.Output.WriteAsync(text);
                await result.InvocationConfiguration.Output.FlushAsync();
                return 0;
            },
            result.InvocationConfiguration.Error));
        return new Command("chat", "Chat templates: render a conversation the way a model is given it.") { render };
    }

    private static DateTime? ParseNow(string? text)
    {
        if (text is null)
        {
            return null;
        }

        return DateTime.TryParse(text, CultureInfo.InvariantCulture, DateTimeStyles.AllowWhiteSpaces | DateTimeStyles.RoundtripKind, out var time)
            ? time
            : throw new InvalidInputException($"--now {text}: give an ISO 8601 time such as 2025-03-14T09:26:53");
    }

    private static ChatTemplateInput ReadInput(string path)
    {
        string json;
        try
        {
            json = File.ReadAllText(path);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new InvalidInputException($"--input {path}: {e.Message}");
        }

        ChatTemplateInput conversation;
        try
        {
            conversation = ChatTemplateInput.FromJson(json);
        }
        catch (InvalidInputException e)
        {
            throw new InvalidInputException($"--input {path}: {e.Message}");
        }

        if (conversation.Variables?["extra_context"] is JsonObject extra)
        {
            var variables = conversation.Variables;
            variables.Remove("extra_context");
            foreach (var (key, value) in extra)
            {
                variables[key] = value?.DeepClone();
            }
        }

        return conversation;
    }
}
