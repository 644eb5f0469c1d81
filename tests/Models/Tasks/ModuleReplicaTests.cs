using DistributedInference.Models.Runtime;
using DistributedInference.Models.Tasks;
using static TorchSharp.torch;

namespace DistributedInference.Models.Tests.Tasks;

/// <summary>ModuleReplica's ownership: what fromTensor computes reaches the caller alive, and nothing else is left over.</summary>
public sealed class ModuleReplicaTests
{
    public ModuleReplicaTests() => LibTorch.Initialize();

    private static nn.Module<Tensor, Tensor> Doubler(Device device) => nn.Sequential(("scale", new Scale())).to(device);

    [Fact]
    public void A_fromTensor_that_computes_returns_a_live_tensor_and_the_output_is_disposed()
    {
        Tensor? given = null;
        using var replica = ModuleReplica.Factory("doubler", Doubler, fromTensor: output =>
        {
            given = output;
            return output.sum(1);
        })(DeviceName.Cpu);
        using var rows = arange(6, ScalarType.Float32).view(3, 2);

        using var result = (Tensor)replica.Run(rows);

        Assert.Equal(new[] { 2f, 10, 18 }, result.data<float>().ToArray());
        Assert.True(given!.IsInvalid, "the module's output, not returned, is disposed");
        Assert.False(rows.IsInvalid);
    }

    [Fact]
    public void A_fromTensor_that_returns_the_output_inside_a_dictionary_or_list_returns_it_alive()
    {
        using var replica = ModuleReplica.Factory("doubler", Doubler, fromTensor: output => new Dictionary<string, object>
        {
            ["doubled"] = output,
            ["rows"] = new object[] { output.sum(1) },
        })(DeviceName.Cpu);
        using var rows = arange(4, ScalarType.Float32).view(2, 2);

        var result = (Dictionary<string, object>)replica.Run(rows);

        using var doubled = (Tensor)result["doubled"];
        using var sums = (Tensor)((object[])result["rows"])[0];
        Assert.Equal(new[] { 0f, 2, 4, 6 }, doubled.data<float>().ToArray());
        Assert.Equal(new[] { 2f, 10 }, sums.data<float>().ToArray());
    }

    [Fact]
    public void By_default_the_output_itself_is_returned_alive()
    {
        using var replica = ModuleReplica.Factory("doubler", Doubler)(DeviceName.Cpu);
        using var rows = arange(4, ScalarType.Float32).view(2, 2);

        using var result = (Tensor)replica.Run(rows);

        Assert.Equal(new[] { 0f, 2, 4, 6 }, result.data<float>().ToArray());
    }

    private sealed class Scale : nn.Module<Tensor, Tensor>
    {
        public Scale()
            : base(nameof(Scale))
        {
        }

        public override Tensor forward(Tensor input) => input.mul(2);
    }
}
