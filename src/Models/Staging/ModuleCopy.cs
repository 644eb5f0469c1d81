using static TorchSharp.torch;

namespace DistributedInference.Models.Staging;

/// <summary>Fills a freshly built module with another module's values, on a chosen device and dtype.</summary>
public static class ModuleCopy
{
    /// <summary>Copies every parameter of <paramref name="source"/> into the parameter of <paramref name="target"/> named <paramref name="prefix"/> + its name.</summary>
    public static T Into<T>(nn.Module source, T target, Device device, ScalarType dtype, string prefix = "")
        where T : nn.Module =>
        Into(source.named_parameters().ToDictionary(p => prefix + p.name, p => (Tensor)p.parameter), target, device, dtype);

    /// <summary>Moves <paramref name="target"/> to the device and dtype, then copies the named values into its parameters; every parameter must be named.</summary>
    public static T Into<T>(IReadOnlyDictionary<string, Tensor> values, T target, Device device, ScalarType dtype)
        where T : nn.Module
    {
        target.to(dtype).to(device);
        using var noGrad = no_grad();
        foreach (var (name, parameter) in target.named_parameters())
        {
            if (!values.TryGetValue(name, out var value))
            {
                throw new InvalidOperationException($"no value for parameter '{name}' of {target.GetName()}");
            }

            parameter.copy_(value);
        }

        return target;
    }
}
