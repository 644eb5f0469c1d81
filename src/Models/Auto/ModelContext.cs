namespace DistributedInference.Models.Auto;

/// <summary>How many positions a model takes (config.json's <c>max_position_embeddings</c> / <c>n_positions</c>).</summary>
public static class ModelContext
{
    /// <summary>The model's context in positions (prompt and output together); <see cref="int.MaxValue"/> for a model without one.</summary>
    public static int Positions(IModelSource source) => source switch
    {
        LlamaModelSource llama => llama.Source.Config.MaxPositions,
        Gpt2ModelSource gpt2 => gpt2.Source.Config.MaxPositions,
        BertModelSource bert => bert.Source.Config.MaxPositions,
        _ => int.MaxValue,
    };
}
