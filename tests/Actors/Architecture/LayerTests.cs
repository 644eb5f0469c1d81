using System.Reflection;
using NetArchTest.Rules;

namespace DistributedInference.Actors.Tests.Architecture;

/// <summary>
/// The arrows of src/Actors (docs/design.md, "Layers"): the kernel knows no feature; a feature (Replica, Pipeline,
/// Processes) knows only the kernel and src/Models, never another feature, the cluster or hosting; the cluster knows the
/// kernel and the features, never hosting; hosting knows everything. Checked on the compiled assembly (every type
/// reference in signatures and method bodies), so a forbidden <c>using</c> that is never used passes and a fully
/// qualified name in a method body fails.
/// </summary>
public sealed class LayerTests
{
    private const string Root = "DistributedInference.Actors";
    private const string Kernel = Root + ".Kernel";
    private const string Cluster = Root + ".Cluster";
    private const string Hosting = Root + ".Hosting";

    /// <summary>The features: each imports only the kernel and src/Models.</summary>
    public static readonly string[] Features = [Root + ".Replica", Root + ".Pipeline", Root + ".Processes", Root + ".Serving"];

    private static readonly Assembly Actors = typeof(DistributedInference.Actors.Kernel.Rows.RowBatch).Assembly;

    public static TheoryData<string> EachFeature() => [.. Features];

    [Fact]
    public void Every_type_of_the_actors_assembly_lives_in_a_layer()
    {
        string[] layers = [Kernel, .. Features, Cluster, Hosting];
        var outside = Actors.GetTypes()
            .Where(t => t.Namespace is not null && t.Namespace.StartsWith(Root, StringComparison.Ordinal))
            .Where(t => !layers.Any(layer => InNamespace(t, layer)))
            .Select(t => t.FullName)
            .ToList();
        Assert.Empty(outside);
    }

    [Fact]
    public void The_kernel_references_no_feature_no_cluster_and_no_hosting() =>
        AssertNoDependency(Kernel, [.. Features, Cluster, Hosting]);

    [Theory]
    [MemberData(nameof(EachFeature))]
    public void A_feature_references_only_the_kernel(string feature) =>
        AssertNoDependency(feature, [.. Features.Where(f => f != feature), Cluster, Hosting]);

    [Fact]
    public void The_cluster_references_no_hosting() => AssertNoDependency(Cluster, [Hosting]);

    private static bool InNamespace(Type type, string layer) =>
        type.Namespace == layer || type.Namespace!.StartsWith(layer + ".", StringComparison.Ordinal);

    private static void AssertNoDependency(string layer, string[] forbidden)
    {
        var result = Types.InAssembly(Actors).That().ResideInNamespace(layer).ShouldNot().HaveDependencyOnAny(forbidden).GetResult();
        var offenders = result.FailingTypeNames ?? [];
        Assert.True(result.IsSuccessful, $"{layer} references {string.Join(" or ", forbidden)} in: {string.Join(", ", offenders)}");
    }
}
