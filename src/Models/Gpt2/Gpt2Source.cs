using DistributedInference.Models.Loading;
using static TorchSharp.torch;

namespace DistributedInference.Models.Gpt2;

/// <summary>
/// Where a GPT-2 comes from: a Hugging Face folder, or a built-in configuration (<c>gpt2</c>, <c>gpt2-medium</c>,
/// <c>gpt2-large</c>, <c>gpt2-xl</c>, <c>gpt2-tiny</c>) initialised randomly from a seed.
/// </summary>
public sealed class Gpt2Source
{
    private readonly HuggingFaceCheckpoint? _checkpoint;

    private Gpt2Source(string name, Gpt2Config config, HuggingFaceCheckpoint? checkpoint, long seed)
    {
        Name = name;
        Config = config;
        _checkpoint = checkpoint;
        Seed = seed;
    }

    public string Name { get; }

    public Gpt2Config Config { get; }

    public long Seed { get; }

    /// <summary>True for a built-in configuration, whose weights are random (from <see cref="Seed"/>).</summary>
    public bool IsRandom => _checkpoint is null;

    /// <summary>The folder's checkpoint (headers read, tensors not), or null for a built-in with random weights.</summary>
    internal HuggingFaceCheckpoint? Checkpoint => _checkpoint;

    public bool HasClassifierHead => _checkpoint is null || _checkpoint.Contains("score.weight");

    /// <summary>A folder path if it exists, else a built-in name; anything else is an error.</summary>
    public static Gpt2Source Resolve(string model, long seed = 0)
    {
        if (Directory.Exists(model))
        {
            var checkpoint = HuggingFaceCheckpoint.Open(model);
            return new Gpt2Source(model, Gpt2Config.FromJson(checkpoint.ConfigPath), checkpoint, seed);
        }

        if (Gpt2Config.BuiltIn.TryGetValue(model, out var config))
        {
            return new Gpt2Source(model.ToLowerInvariant(), config, null, seed);
        }

        throw new InvalidInputException(
            $"unknown model '{model}': not a folder, and not a built-in ({string.Join(", ", Gpt2Config.BuiltIn.Keys)})");
    }

    public Gpt2LMHeadModel CreateLanguageModel(Device device, ScalarType dtype)
    {
        var tied = _checkpoint is null || Config.TieWordEmbeddings || !_checkpoint.Contains("lm_head.weight");
        return Fill(new Gpt2LMHeadModel(Config, tied), device, dtype);
    }

    public Gpt2ForSequenceClassification CreateClassifier(Device device, ScalarType dtype)
    {
        RequireClassifierHead();
        return Fill(new Gpt2ForSequenceClassification(Config), device, dtype);
    }

    /// <summary>Fails unless the source can build a classifier (a folder without <c>score.weight</c> cannot).</summary>
    public void RequireClassifierHead()
    {
        if (!HasClassifierHead)
        {
            throw new InvalidInputException($"{Name}: no classification head (score.weight) in the checkpoint; task classify needs a GPT2ForSequenceClassification folder");
        }
    }

    private T Fill<T>(T model, Device device, ScalarType dtype)
        where T : nn.Module
    {
        if (_checkpoint is null)
        {
            Gpt2Weights.InitializeRandom(model, Config, Seed);
        }
        else
        {
            Gpt2Weights.Load(model, _checkpoint);
        }

        foreach (var parameter in model.parameters())
        {
            parameter.requires_grad = false;
        }

        model.to(dtype).to(device);
        Runtime.HugePages.Collapse(model.parameters());
        model.eval();
        return model;
    }
}
