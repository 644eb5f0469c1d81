using DistributedInference.Actors.Replica;
using Spectre.Console;

namespace DistributedInference.Host.Inference;

/// <summary>A progress bar of rows done on stderr, shown only when stderr is a terminal.</summary>
public static class ProgressBar
{
    public static async Task<T> Track<T>(TextWriter stderr, string description, Func<IProgress<JobProgress>?, Task<T>> work)
    {
        if (!ReferenceEquals(stderr, Console.Error) || Console.IsErrorRedirected)
        {
            return await work(null);
        }

        var console = AnsiConsole.Create(new AnsiConsoleSettings { Out = new AnsiConsoleOutput(Console.Error) });
        return await console.Progress()
            .AutoClear(true)
            .Columns(new TaskDescriptionColumn(), new ProgressBarColumn(), new PercentageColumn(), new RemainingTimeColumn())
            .StartAsync(async context =>
            {
                var bar = context.AddTask(description, maxValue: 1);
                var result = await work(new Progress<JobProgress>(p =>
                {
                    bar.MaxValue = Math.Max(1, p.RowsTotal);
                    bar.Value = p.RowsDone;
                }));
                bar.Value = bar.MaxValue;
                return result;
            });
    }
}
