using DistributedInference.Actors.Kernel.Requests;
using DistributedInference.Actors.Replica;
using DistributedInference.Models;

namespace DistributedInference.Host.CommandLine;

/// <summary>
/// Turns failures into one line on stderr and an exit code: 2 for input the user can fix, 1 for anything else (a job
/// that failed, an I/O error such as a full disk said as it is, and "internal error" for what is a bug of ours).
/// Set DI_DEBUG=1 to see the stack trace of an unexpected failure.
/// </summary>
public static class UserErrors
{
    public const int BadInput = 2;
    public const int Failure = 1;

    public static async Task<int> Run(Func<Task<int>> action, TextWriter error)
    {
        try
        {
            return await action();
        }
        catch (InvalidInputException e)
        {
            await error.WriteLineAsync($"di: error: {e.Message}");
            return BadInput;
        }
        catch (Exception e) when (e is JobFailedException or Models.Generation.NonFiniteLogitsException)
        {
            await error.WriteLineAsync($"di: error: job failed: {e.Message}");
            return Failure;
        }
        catch (OperationCanceledException)
        {
            await error.WriteLineAsync("di: cancelled");
            return Failure;
        }
        catch (Exception e) when (e is IOException and not (FileNotFoundException or DirectoryNotFoundException) || e is UnauthorizedAccessException)
        {
            // The machine's trouble, not ours or the input's: a full disk, a read-only folder, a file another process holds.
            await error.WriteLineAsync($"di: error: {FirstLine(e.Message)}");
            return Failure;
        }
        catch (Exception e)
        {
            var detail = Environment.GetEnvironmentVariable("DI_DEBUG") == "1" ? e.ToString() : $"{e.GetType().Name}: {FirstLine(e.Message)}";
            await error.WriteLineAsync($"di: internal error: {detail}");
            return Failure;
        }
    }

    private static string FirstLine(string text) => text.Split('\n', 2)[0].Trim();
}
