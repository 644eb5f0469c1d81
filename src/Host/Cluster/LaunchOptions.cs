namespace DistributedInference.Host.Cluster;

/// <summary><c>di launch</c>: how many node processes, with which devices each, and the infer command line to run.</summary>
public sealed record LaunchOptions(int NumProcesses, string? DevicesPerProcess, string? ConfigFile, IReadOnlyList<string> Command);
