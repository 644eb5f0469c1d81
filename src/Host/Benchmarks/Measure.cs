using System.Diagnostics;

namespace DistributedInference.Host.Benchmarks;

/// <summary>Median wall time of repeated runs, after one warm-up run.</summary>
public static class Measure
{
    public static async Task<TimeSpan> Median(int repeats, Func<Task> run)
    {
        await run();
        var times = new List<TimeSpan>();
        for (var i = 0; i < repeats; i++)
        {
            var clock = Stopwatch.StartNew();
            await run();
            times.Add(clock.Elapsed);
        }

        times.Sort();
        return times[times.Count / 2];
    }
}
