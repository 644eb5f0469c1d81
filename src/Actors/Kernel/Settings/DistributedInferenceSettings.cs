using System.Runtime.CompilerServices;
using Akka.Actor;
using Akka.Configuration;
using DistributedInference.Models;

namespace DistributedInference.Actors.Kernel.Settings;

/// <summary>
/// Our own keys (<c>distributed-inference.*</c>, defaults in hocon/distributed-inference.conf), read once per actor
/// system (<see cref="Get"/>) and checked: a malformed or impossible value is one line naming the key.
/// </summary>
public sealed record DistributedInferenceSettings(int MaxBatchSize, TimeSpan JobTimeout, TimeSpan BatchTimeout, TimeSpan KeepFinishedJobsFor, TimeSpan JoinTimeout)
{
    /// <summary><c>max-attempts</c>: attempts per batch before it is split to isolate the rows that fail.</summary>
    public int MaxAttempts { get; init; } = 3;

    /// <summary>
    /// <c>submit-timeout</c>: how long a submission waits to be acknowledged, and a job's home waits for the input it
    /// asked its client for, before failing.
    /// </summary>
    public TimeSpan SubmitTimeout { get; init; } = TimeSpan.FromMinutes(2);

    private static readonly ConditionalWeakTable<ActorSystem, DistributedInferenceSettings> PerSystem = new();

    /// <summary>The settings of <paramref name="system"/>, read from its configuration the first time and kept.</summary>
    /// <exception cref="InvalidInputException">A setting is malformed or out of range.</exception>
    public static DistributedInferenceSettings Get(ActorSystem system) => PerSystem.GetValue(system, s => From(s.Settings.Config));

    public static DistributedInferenceSettings From(Config config)
    {
        var section = config.GetConfig("distributed-inference")
            ?? throw new InvalidInputException("configuration has no distributed-inference section");
        DistributedInferenceSettings settings;
        try
        {
            settings = new DistributedInferenceSettings(
                section.GetInt("max-batch-size"),
                section.GetTimeSpan("job-timeout"),
                section.GetTimeSpan("batch-timeout"),
                section.GetTimeSpan("keep-finished-jobs-for"),
                section.GetTimeSpan("join-timeout"))
            {
                MaxAttempts = section.GetInt("max-attempts", 3),
                SubmitTimeout = section.GetTimeSpan("submit-timeout", TimeSpan.FromMinutes(2)),
            };
        }
        catch (Exception e) when (e is FormatException or ArgumentException or OverflowException or ConfigurationException)
        {
            throw new InvalidInputException($"distributed-inference: malformed setting ({e.Message.Split('\n', 2)[0]})", e);
        }

        if (settings.MaxBatchSize <= 0)
        {
            throw new InvalidInputException($"distributed-inference.max-batch-size must be positive, got {settings.MaxBatchSize}");
        }

        if (settings.MaxAttempts <= 0)
        {
            throw new InvalidInputException($"distributed-inference.max-attempts must be positive, got {settings.MaxAttempts}");
        }

        if (settings.JobTimeout <= TimeSpan.Zero || settings.BatchTimeout <= TimeSpan.Zero || settings.KeepFinishedJobsFor <= TimeSpan.Zero || settings.JoinTimeout <= TimeSpan.Zero)
        {
            throw new InvalidInputException("distributed-inference.job-timeout, batch-timeout, keep-finished-jobs-for and join-timeout must be positive");
        }

        return settings;
    }
}
