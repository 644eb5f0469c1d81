using DistributedInference.Models;
using DistributedInference.Models.Auto;
using DistributedInference.Models.Serving;
using DistributedInference.Models.Tasks;
using DistributedInference.Models.Templates;
using DistributedInference.Models.Tokenization;

namespace DistributedInference.Host.Serving;

/// <summary>
/// What <c>di serve</c> serves, read once at start: the model (a decoder that generates, or a BERT embedder), the name
/// the API reports, its tokenizer, its chat template and the ids that end a sequence: the model's end-of-sequence ids
/// (config.json and generation_config.json, as transformers' generate stops) and, for chats, the template's end-of-turn
/// token (tokenizer_config.json's <c>eos_token</c>).
/// </summary>
public sealed class ServedModel
{
    private ServedModel(IModelSource source, string name, HuggingFaceChatTemplate? chatTemplate, string? chatTemplateAbsence)
    {
        Source = source;
        Name = name;
        Identity = ModelIdentity.Of(source.Name, source.RandomSeed);
        ChatTemplate = chatTemplate;
        ChatTemplateAbsence = chatTemplateAbsence;
        Generates = ServingReplica.Runs(source);
        Embeds = source.Tasks.Contains(InferenceTask.Embed);
        Draws = source.Tasks.Contains(InferenceTask.TextToImage);
        ContextLength = ModelContext.Positions(source);
        if (chatTemplate?.SpecialToken("eos_token") is { } eos && Tokenizer is { } tokenizer)
        {
            var ids = tokenizer.Encode(eos, addSpecialTokens: false);
            EndOfTurnTokenId = ids.Count == 1 ? ids[0] : null;
        }
    }

    /// <summary>The model name the API reports and requests must name.</summary>
    public string Name { get; }

    public IModelSource Source { get; }

    /// <summary>The model's weights, as devices serving it must hold them (jobs name it).</summary>
    public ModelIdentity Identity { get; }

    /// <summary>The model's tokenizer; null for a built-in with random weights (token-id prompts only).</summary>
    public ITextTokenizer? Tokenizer => Source.Tokenizer;

    /// <summary>The chat template, or null (then chat requests are refused with <see cref="ChatTemplateAbsence"/>).</summary>
    public HuggingFaceChatTemplate? ChatTemplate { get; }

    /// <summary>Why there is no chat template.</summary>
    public string? ChatTemplateAbsence { get; }

    /// <summary>Whether the model generates (completions and chats).</summary>
    public bool Generates { get; }

    /// <summary>Whether the model embeds.</summary>
    public bool Embeds { get; }

    /// <summary>Whether the model draws (a Stable Diffusion pipeline: text-to-image, <c>di batch</c> only).</summary>
    public bool Draws { get; }

    /// <summary>The task its devices run: generate, embed or text-to-image.</summary>
    public InferenceTask DeviceTask => Generates ? InferenceTask.Generate : Draws ? InferenceTask.TextToImage : InferenceTask.Embed;

    /// <summary>Positions a request may use: prompt plus generated tokens must fit (the model's, or fewer when the
    /// devices' KV cache holds fewer: vLLM's <c>max_model_len</c>).</summary>
    public int ContextLength { get; private set; }

    /// <summary>Lowers <see cref="ContextLength"/> to <paramref name="positions"/> when that is fewer.</summary>
    public void LimitContext(int positions) => ContextLength = Math.Min(ContextLength, positions);

    /// <summary>The model's end-of-sequence ids (generation stops at any).</summary>
    public IReadOnlyList<long> EndOfSequenceIds => Source.EosTokenIds;

    /// <summary>The chat template's end-of-turn token's id (tokenizer_config.json's eos_token), when it is one token.</summary>
    public long? EndOfTurnTokenId { get; }

    /// <summary>Reads the model's folder (or built-in) and its chat template.</summary>
    /// <param name="model">Folder or built-in name.</param>
    /// <param name="servedName">The name to report; null: <paramref name="model"/> as given.</param>
    /// <param name="chatTemplateFile">A template file instead of the folder's own (<c>--chat-template</c>).</param>
    /// <exception cref="InvalidInputException">Unknown model, a model that neither generates nor embeds, a bad template file.</exception>
    /// <exception cref="TemplateException">The chat template does not parse.</exception>
    public static ServedModel Load(string model, string? servedName, string? chatTemplateFile, long seed)
    {
        var source = AutoModelSource.Resolve(model, seed);
        if (!ServingReplica.Runs(source) && !source.Tasks.Contains(InferenceTask.Embed) && !source.Tasks.Contains(InferenceTask.TextToImage))
        {
            throw new InvalidInputException($"{model} ({source.ModelType}) neither generates, embeds nor draws");
        }

        HuggingFaceChatTemplate? template = null;
        string? absence;
        if (Directory.Exists(model) || chatTemplateFile is not null)
        {
            HuggingFaceChatTemplate.TryLoad(Directory.Exists(model) ? model : chatTemplateFile!, out template, out absence, chatTemplateFile);
        }
        else
        {
            absence = $"{model} is a built-in configuration, which has no chat template";
        }

        return new ServedModel(source, servedName ?? model, template, absence is null ? null : $"{absence}: give --chat-template FILE");
    }
}
