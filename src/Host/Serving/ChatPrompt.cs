using System.Text.Json.Nodes;
using DistributedInference.Models;
using DistributedInference.Models.Templates;

namespace DistributedInference.Host.Serving;

/// <summary>A chat as the model is given it: the chat template rendered (as transformers renders it), then tokenized without adding special tokens.</summary>
public static class ChatPrompt
{
    /// <exception cref="InvalidInputException">No template or tokenizer, or the template refused the messages (its own message).</exception>
    public static IReadOnlyList<long> TokenIds(ServedModel model, ChatTemplateInput input, bool addSpecialTokens = false)
    {
        var template = model.ChatTemplate ?? throw new InvalidInputException($"The model `{model.Name}` has no chat template ({model.ChatTemplateAbsence}).");
        var tokenizer = model.Tokenizer ?? throw new InvalidInputException($"The model `{model.Name}` has no tokenizer.");
        string text;
        try
        {
            text = template.Apply(input);
        }
        catch (TemplateException e)
        {
            throw new InvalidInputException(e.IsRaisedByTemplate ? e.Reason : $"The chat template failed on these messages: {e.Message}");
        }

        return tokenizer.Encode(text, addSpecialTokens);
    }
}
