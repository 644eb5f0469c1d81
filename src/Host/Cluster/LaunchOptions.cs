namespace DistributedInference.Host.Cluster;

/// <summary>
/// <c>di launch</c>: how many node processes, with which devices each, and the infer command line to run;
/// <paramref name="Verbose"/>: the nodes log Akka's lines too, and their stderr is shown prefixed with the node.
/// </summary>
public sealed record LaunchOptions(int NumProcesses, string? DevicesPerProcess, string? ConfigFile, IReadOnlyList<string> Command, bool Verbose = false);
