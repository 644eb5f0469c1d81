using DistributedInference.Models.Loading;
using DistributedInference.Models.Tokenization;
using static TorchSharp.torch;

namespace DistributedInference.Models.Bert;

/// <summary>
/// Where a BERT sentence embedder comes from: a sentence-transformers folder (modules.json, Pooling, Normalize), a
/// plain Hugging Face BERT folder (mean pooling, no normalisation, truncation at max_position_embeddings), or a
/// built-in configuration initialised randomly from a seed: <c>all-minilm-l6-v2</c>, <c>bge-small-en-v1.5</c>,
/// <c>bert-tiny</c>. Built-ins have no tokenizer: they embed token ids only.
/// </summary>
public sealed class BertSource
{
    private readonly HuggingFaceCheckpoint? _checkpoint;

    private BertSource(string name, BertConfig config, SentenceTransformerConfig sentence, HuggingFaceCheckpoint? checkpoint, long seed)
    {
        Name = name;
        Config = config;
        Sentence = sentence;
        _checkpoint = checkpoint;
        Seed = seed;
    }

    /// <summary>The built-in shapes (with sentence-transformers settings) a model name may refer to.</summary>
    public static IReadOnlyDictionary<string, (BertConfig Config, SentenceTransformerConfig Sentence)> BuiltIn { get; } =
        new Dictionary<string, (BertConfig, SentenceTransformerConfig)>(StringComparer.OrdinalIgnoreCase)
        {
            // sentence-transformers/all-MiniLM-L6-v2: mean pooling, Normalize, max_seq_length 256.
            ["all-minilm-l6-v2"] = (
                new BertConfig { HiddenSize = 384, LayerCount = 6, HeadCount = 12, IntermediateSize = 1536 },
                new SentenceTransformerConfig { MaxSeqLength = 256, Pooling = SentencePooling.Mean, Normalize = true }),
            // BAAI/bge-small-en-v1.5: [CLS] pooling, Normalize, max_seq_length 512.
            ["bge-small-en-v1.5"] = (
                new BertConfig { HiddenSize = 384, LayerCount = 12, HeadCount = 12, IntermediateSize = 1536 },
                new SentenceTransformerConfig { MaxSeqLength = 512, DoLowerCase = true, Pooling = SentencePooling.Cls, Normalize = true }),
            // The shape of prajjwal1/bert-tiny, small enough for tests: mean pooling, Normalize, max_seq_length 128.
            ["bert-tiny"] = (
                new BertConfig { HiddenSize = 128, LayerCount = 2, HeadCount = 2, IntermediateSize = 512 },
                new SentenceTransformerConfig { MaxSeqLength = 128, Pooling = SentencePooling.Mean, Normalize = true }),
        };

    /// <summary>The folder path or built-in name it was resolved from.</summary>
    public string Name { get; }

    /// <summary>The BERT's hyper-parameters.</summary>
    public BertConfig Config { get; }

    /// <summary>Pooling, normalisation and truncation (<see cref="SentenceTransformerConfig.MaxSeqLength"/> is set).</summary>
    public SentenceTransformerConfig Sentence { get; }

    /// <summary>The seed of a built-in's random weights (unused for folders).</summary>
    public long Seed { get; }

    /// <summary>Whether <see cref="LoadTokenizer"/> can work: the source is a folder with <c>tokenizer.json</c>.</summary>
    public bool HasTokenizer => Sentence.TransformerFolder is { } folder && File.Exists(Path.Combine(folder, HuggingFaceTokenizer.FileName));

    /// <summary>A folder path if it exists, else a built-in name.</summary>
    /// <exception cref="InvalidInputException">Neither a folder nor a built-in, or the folder's files are missing,
    /// malformed or describe something not supported (messages name the file and key).</exception>
    public static BertSource Resolve(string model, long seed = 0)
    {
        if (Directory.Exists(model))
        {
            var sentence = SentenceTransformerConfig.Read(model);
            var checkpoint = HuggingFaceCheckpoint.Open(sentence.TransformerFolder!);
            var config = BertConfig.FromJson(checkpoint.ConfigPath);
            return new BertSource(model, config, sentence.Limited(config.MaxPositions), checkpoint, seed);
        }

        if (BuiltIn.TryGetValue(model, out var builtIn))
        {
            return new BertSource(model.ToLowerInvariant(), builtIn.Config, builtIn.Sentence.Limited(builtIn.Config.MaxPositions), null, seed);
        }

        throw new InvalidInputException(
            $"unknown model '{model}': not a folder, and not a built-in ({string.Join(", ", BuiltIn.Keys)})");
    }

    /// <summary>The BERT with its weights (read from the folder, converted to <paramref name="dtype"/>, or seeded random) in eval mode.</summary>
    /// <returns>A new model the caller owns.</returns>
    /// <exception cref="InvalidInputException">A tensor is missing, unexpected or of the wrong shape.</exception>
    public BertModel CreateModel(Device device, ScalarType dtype)
    {
        var model = new BertModel(Config);
        try
        {
            foreach (var parameter in model.parameters())
            {
                parameter.requires_grad = false;
            }

            if (_checkpoint is null)
            {
                BertWeights.InitializeRandom(model, Seed);
                model.to(dtype);
            }
            else
            {
                model.to(dtype);
                BertWeights.Load(model, _checkpoint);
            }

            model.to(device);
            model.eval();
            return model;
        }
        catch
        {
            model.Dispose();
            throw;
        }
    }

    /// <summary>The folder's tokenizer set up as sentence-transformers does (lower-casing, truncation, padding).</summary>
    /// <exception cref="InvalidInputException">The source is a built-in (no tokenizer: give a folder), or the
    /// folder's tokenizer.json is missing or does not parse.</exception>
    public SentenceTokenizer LoadTokenizer()
    {
        if (Sentence.TransformerFolder is not { } folder)
        {
            throw new InvalidInputException($"{Name} is a built-in with random weights and no tokenizer: give a model folder with tokenizer.json to embed text");
        }

        var tokenizer = HuggingFaceTokenizer.Load(folder);
        var pad = Config.PadTokenId ?? tokenizer.TokenToId("[PAD]") ?? 0;
        return new SentenceTokenizer(tokenizer, Sentence.MaxSeqLength!.Value, Sentence.DoLowerCase, pad);
    }

    /// <summary>
    /// The embedder: <see cref="CreateModel"/> plus the folder's tokenizer when it has one (built-ins and folders
    /// without tokenizer.json embed token ids only).
    /// </summary>
    /// <returns>A new embedder that owns its model and tokenizer.</returns>
    public SentenceEmbedder CreateEmbedder(Device device, ScalarType dtype)
    {
        var tokenizer = HasTokenizer ? LoadTokenizer() : null;
        return new SentenceEmbedder(CreateModel(device, dtype), Sentence, tokenizer, owns: true);
    }
}
