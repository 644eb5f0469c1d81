using System.Text.Json;

namespace DistributedInference.Models.Templates;

/// <summary>
/// A model folder's chat template with its special tokens, applied as transformers'
/// <c>tokenizer.apply_chat_template(messages, tools=..., tokenize=False, add_generation_prompt=..., **kwargs)</c>:
/// the template from <c>chat_template.jinja</c> when the folder has one, else <c>tokenizer_config.json</c>'s
/// <c>chat_template</c> (a string, or a list of named templates: <c>tool_use</c> when tools are given and it exists,
/// else <c>default</c>); the variables <c>messages</c>, <c>tools</c>, <c>documents</c> (none),
/// <c>add_generation_prompt</c>, then the special tokens (<c>bos_token</c>, <c>eos_token</c>, <c>unk_token</c>,
/// <c>sep_token</c>, <c>pad_token</c>, <c>cls_token</c>, <c>mask_token</c>: strings, an AddedToken object read by its
/// <c>content</c>, left undefined when null; <c>additional_special_tokens</c>), then the input's other variables.
/// </summary>
public sealed class HuggingFaceChatTemplate
{
    private static readonly string[] SpecialTokenNames = ["bos_token", "eos_token", "unk_token", "sep_token", "pad_token", "cls_token", "mask_token"];

    private readonly IReadOnlyDictionary<string, ChatTemplate> _named;

    private HuggingFaceChatTemplate(ChatTemplate? template, IReadOnlyDictionary<string, ChatTemplate> named, IReadOnlyList<KeyValuePair<string, string>> specialTokens, IReadOnlyList<string> additionalSpecialTokens)
    {
        Template = template ?? (named.TryGetValue("default", out var fallback) ? fallback : null);
        _named = named;
        SpecialTokens = specialTokens;
        AdditionalSpecialTokens = additionalSpecialTokens;
    }

    /// <summary>The template used when no named one is chosen (null only when the folder names templates without a default).</summary>
    public ChatTemplate? Template { get; }

    /// <summary>The special tokens passed to the template, in the order transformers passes them.</summary>
    public IReadOnlyList<KeyValuePair<string, string>> SpecialTokens { get; }

    /// <summary><c>additional_special_tokens</c> (their <c>content</c>).</summary>
    public IReadOnlyList<string> AdditionalSpecialTokens { get; }

    /// <summary>A special token's text (<c>eos_token</c>), or null.</summary>
    public string? SpecialToken(string name) => SpecialTokens.Where(t => t.Key == name).Select(t => t.Value).FirstOrDefault();

    /// <summary>Reads the template of a model folder, a <c>tokenizer_config.json</c>, or a template file (its folder's
    /// <c>tokenizer_config.json</c>, if any, gives the special tokens).</summary>
    /// <exception cref="InvalidInputException">No such file or folder, no chat template there, a config that is not JSON.</exception>
    /// <exception cref="TemplateException">The template does not parse.</exception>
    /// <param name="path">A model folder, a tokenizer_config.json or a template file.</param>
    /// <param name="templateFile">A template file to use instead of the one <paramref name="path"/> has.</param>
    public static HuggingFaceChatTemplate Load(string path, string? templateFile = null)
    {
        return TryLoad(path, out var template, out var reason, templateFile) ? template! : throw new InvalidInputException(reason!);
    }

    /// <summary>As <see cref="Load"/>, answering false (with the reason) when the path has no chat template.</summary>
    /// <param name="path">A model folder, a tokenizer_config.json or a template file.</param>
    /// <param name="templateFile">A template file to use instead of the one <paramref name="path"/> has (vLLM's
    /// <c>--chat-template</c>); the special tokens still come from <paramref name="path"/>.</param>
    /// <exception cref="InvalidInputException">A config that is not JSON, a template file that cannot be read.</exception>
    /// <exception cref="TemplateException">The template does not parse.</exception>
    public static bool TryLoad(string path, out HuggingFaceChatTemplate? template, out string? reason, string? templateFile = null)
    {
        template = null;
        string? folder;
        string? configFile = null;
        if (templateFile is not null && !File.Exists(templateFile))
        {
            throw new InvalidInputException($"{templateFile}: no such chat template file");
        }

        if (Directory.Exists(path))
        {
            folder = path;
        }
        else if (File.Exists(path))
        {
            folder = Path.GetDirectoryName(Path.GetFullPath(path));
            if (path.EndsWith(".json", StringComparison.OrdinalIgnoreCase))
            {
                configFile = path;
            }
            else
            {
                templateFile ??= path;
            }
        }
        else
        {
            reason = $"{path}: no such file or folder";
            return false;
        }

        if (folder is not null)
        {
            var jinja = Path.Combine(folder, "chat_template.jinja");
            if (templateFile is null && configFile is null && File.Exists(jinja))
            {
                templateFile = jinja;
            }

            var config = Path.Combine(folder, "tokenizer_config.json");
            if (configFile is null && File.Exists(config))
            {
                configFile = config;
            }
        }

        JsonElement? root = null;
        if (configFile is not null)
        {
            try
            {
                using var document = JsonDocument.Parse(File.ReadAllBytes(configFile));
                root = document.RootElement.Clone();
            }
            catch (JsonException e)
            {
                throw new InvalidInputException($"{configFile}: not valid JSON ({e.Message})");
            }

            if (root.Value.ValueKind != JsonValueKind.Object)
            {
                throw new InvalidInputException($"{configFile}: expected a JSON object");
            }
        }

        ChatTemplate? main = null;
        var named = new Dictionary<string, ChatTemplate>(StringComparer.Ordinal);
        if (templateFile is not null)
        {
            main = ChatTemplate.Parse(ReadText(templateFile), templateFile);
        }
        else if (root?.TryGetProperty("chat_template", out var chatTemplate) == true)
        {
            if (chatTemplate.ValueKind == JsonValueKind.String)
            {
                main = ChatTemplate.Parse(chatTemplate.GetString()!, configFile!);
            }
            else if (chatTemplate.ValueKind == JsonValueKind.Array)
            {
                foreach (var entry in chatTemplate.EnumerateArray())
                {
                    if (entry.ValueKind == JsonValueKind.Object && entry.TryGetProperty("name", out var n) && n.ValueKind == JsonValueKind.String
                        && entry.TryGetProperty("template", out var t) && t.ValueKind == JsonValueKind.String)
                    {
                        named[n.GetString()!] = ChatTemplate.Parse(t.GetString()!, $"{configFile} ({n.GetString()})");
                    }
                }
            }
        }

        if (main is null && named.Count == 0)
        {
            reason = $"{path}: no chat template (neither chat_template.jinja nor a chat_template in tokenizer_config.json)";
            return false;
        }

        var specialTokens = new List<KeyValuePair<string, string>>();
        var additional = new List<string>();
        if (root is { } r)
        {
            foreach (var name in SpecialTokenNames)
            {
                if (r.TryGetProperty(name, out var token) && TokenText(token) is { Length: > 0 } text)
                {
                    specialTokens.Add(new(name, text));
                }
            }

            if (r.TryGetProperty("additional_special_tokens", out var extra) && extra.ValueKind == JsonValueKind.Array)
            {
                additional.AddRange(extra.EnumerateArray().Select(TokenText).OfType<string>());
            }
        }

        template = new HuggingFaceChatTemplate(main, named, specialTokens, additional);
        reason = null;
        return true;
    }

    /// <summary>The file's text as Python reads it (UTF-8, a BOM kept out), newlines untouched.</summary>
    private static string ReadText(string file)
    {
        var bytes = File.ReadAllBytes(file);
        return new System.Text.UTF8Encoding(false, true).GetString(bytes);
    }

    private static string? TokenText(JsonElement token) => token.ValueKind switch
    {
        JsonValueKind.String => token.GetString(),
        JsonValueKind.Object when token.TryGetProperty("content", out var content) && content.ValueKind == JsonValueKind.String => content.GetString(),
        _ => null,
    };

    /// <summary>The template <c>apply_chat_template</c> would pick for this input.</summary>
    /// <exception cref="InvalidInputException">The folder names templates but none fits.</exception>
    public ChatTemplate Select(ChatTemplateInput input)
    {
        if (input.Tools is not null && _named.TryGetValue("tool_use", out var toolUse))
        {
            return toolUse;
        }

        return Template ?? throw new InvalidInputException($"no default chat template among {string.Join(", ", _named.Keys)}");
    }

    /// <summary>Renders the conversation to the text the model is given.</summary>
    /// <exception cref="TemplateException">The template raised (<c>raise_exception</c>) or failed.</exception>
    public string Apply(ChatTemplateInput input, TemplateRenderOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(input);
        var values = new List<KeyValuePair<string, object?>>
        {
            new("messages", PyJson.FromNode(input.Messages)),
            new("tools", PyJson.FromNode(input.Tools)),
            new("documents", null),
            new("add_generation_prompt", input.AddGenerationPrompt),
        };
        values.AddRange(SpecialTokens.Select(t => new KeyValuePair<string, object?>(t.Key, t.Value)));
        if (AdditionalSpecialTokens.Count > 0)
        {
            values.Add(new("additional_special_tokens", AdditionalSpecialTokens.Select(t => (object?)t).ToList()));
        }

        if (input.Variables is not null)
        {
            values.AddRange(input.Variables.Select(v => new KeyValuePair<string, object?>(v.Key, PyJson.FromNode(v.Value))));
        }

        return Select(input).Render(values, options);
    }
}
