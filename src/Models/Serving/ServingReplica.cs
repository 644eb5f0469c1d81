using DistributedInference.Models.Auto;
using DistributedInference.Models.Generation;
using DistributedInference.Models.Runtime;
using DistributedInference.Models.Tasks;
using static TorchSharp.torch;

namespace DistributedInference.Models.Serving;

/// <summary>
/// A decoder replica that runs served requests: job rows are <see cref="ServingRows"/> (each sequence with its own
/// prompt, sampling, budget and stop ids), results are <see cref="ServingRows.Results"/>. Each token is also reported
/// to the request's <see cref="TokenStreams"/> listener when one is in this process, which can cancel the request.
/// Its spec has no generation options (<c>identity (generate, dtype) on device</c>): they are each request's.
/// </summary>
public sealed class ServingReplica : IReplicaModel
{
    private readonly ICausalLanguageModel _model;
    private readonly IDisposable? _module;

    // module: what this replica owns and disposes; null for a model shared through DeviceDecoders.
    private ServingReplica(ICausalLanguageModel model, IDisposable? module, ReplicaSpec spec, DeviceName device)
    {
        _model = model;
        _module = module;
        Spec = spec;
        Description = spec.On(device);
    }

    public string Description { get; }

    public ReplicaSpec Spec { get; }

    /// <summary>Whether <paramref name="source"/>'s family is a decoder this replica runs (GPT-2 and the Llama family).</summary>
    public static bool Runs(IModelSource source) => source is LlamaModelSource or Gpt2ModelSource;

    /// <summary>Fails unless <paramref name="source"/> is a decoder this replica runs.</summary>
    /// <exception cref="InvalidInputException">The model is not a decoder (one line).</exception>
    public static void RequireDecoder(IModelSource source)
    {
        if (!Runs(source))
        {
            throw NotADecoder(source);
        }
    }

    private static InvalidInputException NotADecoder(IModelSource source) =>
        new($"{source.Name} ({source.ModelType}) does not generate: serve a decoder (gpt2, llama, mistral, qwen2, qwen3)");

    /// <summary>Builds the decoder of <paramref name="source"/> on each device it is called for.</summary>
    /// <exception cref="InvalidInputException">The model is not a decoder.</exception>
    public static ReplicaModelFactory Factory(IModelSource source, ScalarType dtype)
    {
        RequireDecoder(source);

        var spec = new ReplicaSpec(ModelIdentity.Of(source.Name, source.RandomSeed), InferenceTask.Generate, Precisions.Of(dtype));
        return device =>
        {
            var module = CreateDecoder(source, device.ToTorch(), dtype);
            return new ServingReplica((ICausalLanguageModel)module, module, spec, device);
        };
    }

    /// <summary>
    /// Replicas over <paramref name="decoders"/>' modules, built on first use and shared with the node's continuous-batching
    /// engines; a replica does not own its module (a restarted device actor gets the same one back).
    /// </summary>
    public static ReplicaModelFactory Factory(DeviceDecoders decoders)
    {
        var source = decoders.Source;
        var spec = new ReplicaSpec(ModelIdentity.Of(source.Name, source.RandomSeed), InferenceTask.Generate, Precisions.Of(decoders.DType));
        return device => new ServingReplica(decoders.Model(device), null, spec, device);
    }

    /// <summary>The decoder of <paramref name="source"/> on <paramref name="device"/> in <paramref name="dtype"/>: a module that
    /// is an <see cref="ICausalLanguageModel"/>; the caller owns (disposes) it.</summary>
    /// <exception cref="InvalidInputException">The model is not a decoder.</exception>
    public static nn.Module<Tensor, Tensor> CreateDecoder(IModelSource source, Device device, ScalarType dtype) => source switch
    {
        LlamaModelSource llama => llama.Source.CreateModel(device, dtype),
        Gpt2ModelSource gpt2 => gpt2.Source.CreateLanguageModel(device, dtype),
        _ => throw NotADecoder(source),
    };

    public object Run(object rows)
    {
        var (decoderRows, requestIds) = ServingRows.Read(rows);
        var listeners = requestIds.Select(id => id is null ? null : TokenStreams.Find(id)).ToArray();
        IReadOnlyList<DecodedRow> decoded;

        // A model shared with an engine (DeviceDecoders): one forward at a time on it.
        lock (_model)
        {
            decoded = ServingDecoder.Decode(
            _model,
            decoderRows,
            (row, token) => listeners[row]?.OnToken(token),
            row => listeners[row]?.IsCancelled == true);
        }

        return ServingRows.Results(decoded, decoderRows, ServingRows.ResultShape(rows));
    }

    public void Dispose() => _module?.Dispose();
}
