using TorchSharp;

namespace DistributedInference.Models.Runtime;

/// <summary>The floating-point types a model can run in, named as on the command line.</summary>
public static class Precision
{
    public static torch.ScalarType Parse(string text) => text.Trim().ToLowerInvariant() switch
    {
        "fp32" or "float32" or "float" => torch.ScalarType.Float32,
        "fp16" or "float16" or "half" => torch.ScalarType.Float16,
        "bf16" or "bfloat16" => torch.ScalarType.BFloat16,
        _ => throw new InvalidInputException($"unknown dtype '{text}': use fp32, fp16 or bf16"),
    };

    public static string Name(torch.ScalarType type) => type switch
    {
        torch.ScalarType.Float32 => "fp32",
        torch.ScalarType.Float16 => "fp16",
        torch.ScalarType.BFloat16 => "bf16",
        _ => type.ToString(),
    };
}
