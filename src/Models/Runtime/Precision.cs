using TorchSharp;

namespace DistributedInference.Models.Runtime;

/// <summary>
/// The floating-point type a model runs in, as the command line names it (<c>--dtype fp32|fp16|bf16</c>); the engines take
/// it as TorchSharp's <see cref="torch.ScalarType"/> (<see cref="Precisions.ToScalarType"/>).
/// </summary>
public enum Precision
{
    /// <summary>float32.</summary>
    Fp32,

    /// <summary>float16 (half).</summary>
    Fp16,

    /// <summary>bfloat16.</summary>
    Bf16,
}

/// <summary>Names and conversions of <see cref="Precision"/>.</summary>
public static class Precisions
{
    /// <summary>The names the command line takes, in <see cref="Precision"/>'s order.</summary>
    public static readonly IReadOnlyList<string> Names = ["fp32", "fp16", "bf16"];

    /// <summary><c>fp32</c>, <c>fp16</c>, <c>bf16</c>, or transformers' spelling (<c>float32</c>, <c>float16</c>, <c>half</c>, <c>bfloat16</c>).</summary>
    /// <exception cref="InvalidInputException">Another name (one line).</exception>
    public static Precision Parse(string text) => text.Trim().ToLowerInvariant() switch
    {
        "fp32" or "float32" or "float" => Precision.Fp32,
        "fp16" or "float16" or "half" => Precision.Fp16,
        "bf16" or "bfloat16" => Precision.Bf16,
        _ => throw new InvalidInputException($"unknown dtype '{text}': use fp32, fp16 or bf16"),
    };

    /// <summary><c>fp32</c>, <c>fp16</c> or <c>bf16</c>.</summary>
    public static string Name(this Precision precision) => Names[(int)precision];

    /// <summary>The TorchSharp dtype of tensors in this precision.</summary>
    public static torch.ScalarType ToScalarType(this Precision precision) => precision switch
    {
        Precision.Fp16 => torch.ScalarType.Float16,
        Precision.Bf16 => torch.ScalarType.BFloat16,
        _ => torch.ScalarType.Float32,
    };

    /// <summary>The precision of a floating-point dtype.</summary>
    /// <exception cref="ArgumentException">A dtype that is not float32, float16 or bfloat16.</exception>
    public static Precision Of(torch.ScalarType type) => type switch
    {
        torch.ScalarType.Float32 => Precision.Fp32,
        torch.ScalarType.Float16 => Precision.Fp16,
        torch.ScalarType.BFloat16 => Precision.Bf16,
        _ => throw new ArgumentException($"{type} is not a precision a model runs in (fp32, fp16 or bf16)", nameof(type)),
    };

    /// <summary>A dtype's name: <c>fp32</c>, <c>fp16</c>, <c>bf16</c>, or TorchSharp's name of any other.</summary>
    public static string Name(torch.ScalarType type) => type switch
    {
        torch.ScalarType.Float32 or torch.ScalarType.Float16 or torch.ScalarType.BFloat16 => Of(type).Name(),
        _ => type.ToString(),
    };
}
