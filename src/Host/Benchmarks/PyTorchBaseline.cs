using System.Diagnostics;
using System.Reflection;
using System.Text.Json.Nodes;

namespace DistributedInference.Host.Benchmarks;

/// <summary>
/// The PyTorch eager side of <c>di bench model</c>: <c>bench/torch_model_bench.py</c> (embedded in di, written to a
/// temporary file) run by a python that imports torch, kept alive for the whole bench so that each round measures
/// TorchSharp and PyTorch back to back. One JSON command per line in, one JSON line out.
/// </summary>
public sealed class PyTorchBaseline : IDisposable
{
    private const string ScriptResource = "DistributedInference.Host.Benchmarks.torch_model_bench.py";
    private readonly Process _process;
    private readonly string _script;

    private PyTorchBaseline(Process process, string script, JsonObject ready)
    {
        _process = process;
        _script = script;
        Ready = ready;
    }

    /// <summary>The script's first line: torch version, BLAS (kind, build setting, mapped libraries), threads, sdpa.</summary>
    public JsonObject Ready { get; }

    /// <summary>
    /// The python to use: <paramref name="choice"/> when it is a path, none for "none"; for "auto" the first of
    /// <c>DI_BENCH_PYTHON</c>, <c>/usr/bin/python3</c>, <c>python3</c> on PATH that imports torch.
    /// </summary>
    /// <returns>The python, or null with the reason in <paramref name="why"/>.</returns>
    public static string? FindPython(string choice, out string why)
    {
        if (choice == "none")
        {
            why = "--python none";
            return null;
        }

        if (choice != "auto" && !ImportsTorch(choice))
        {
            throw new Models.InvalidInputException($"--python {choice}: cannot run it with torch importable (give a python with torch, auto, or none)");
        }

        var candidates = choice != "auto"
            ? [choice]
            : new[] { Environment.GetEnvironmentVariable("DI_BENCH_PYTHON"), "/usr/bin/python3", "python3" }.OfType<string>().Where(c => c.Length > 0).ToArray();
        foreach (var candidate in candidates)
        {
            if (ImportsTorch(candidate))
            {
                why = string.Empty;
                return candidate;
            }
        }

        why = $"no python with torch found (tried {string.Join(", ", candidates)})";
        return null;
    }

    /// <summary>Starts the script with <paramref name="spec"/> and waits for its first line.</summary>
    /// <exception cref="InvalidOperationException">The script failed to start or to build the model.</exception>
    /// <param name="python">The python that imports torch.</param>
    /// <param name="spec">The script's spec; <c>threads</c> &gt; 0 also caps OpenMP's, OpenBLAS's and MKL's own pools, which
    /// <c>torch.set_num_threads</c> alone leaves at one per core (Debian's OpenBLAS runs its own pthreads).</param>
    public static PyTorchBaseline Start(string python, JsonObject spec)
    {
        var script = Path.Combine(Path.GetTempPath(), $"di-torch-bench-{Environment.ProcessId}.py");
        using (var resource = Assembly.GetExecutingAssembly().GetManifestResourceStream(ScriptResource)
            ?? throw new InvalidOperationException($"resource {ScriptResource} missing from di"))
        using (var file = File.Create(script))
        {
            resource.CopyTo(file);
        }

        var start = new ProcessStartInfo(python)
        {
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            UseShellExecute = false,
        };
        if ((int?)spec["threads"] is int threads and > 0)
        {
            foreach (var variable in new[] { "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS" })
            {
                start.Environment[variable] = threads.ToString(System.Globalization.CultureInfo.InvariantCulture);
            }
        }

        start.ArgumentList.Add(script);
        start.ArgumentList.Add(spec.ToJsonString());
        var process = Process.Start(start) ?? throw new InvalidOperationException($"{python} did not start");
        var line = process.StandardOutput.ReadLine();
        if (line is null)
        {
            process.WaitForExit();
            throw new InvalidOperationException($"the PyTorch baseline ({python} {script}) exited with {process.ExitCode} before building the model");
        }

        return new PyTorchBaseline(process, script, JsonNode.Parse(line)!.AsObject());
    }

    /// <summary>Runs one operation (hw, forward, generate) and returns the script's answer.</summary>
    public JsonObject Ask(string op)
    {
        _process.StandardInput.WriteLine(new JsonObject { ["op"] = op }.ToJsonString());
        _process.StandardInput.Flush();
        var line = _process.StandardOutput.ReadLine() ?? throw new InvalidOperationException($"the PyTorch baseline exited during {op}");
        return JsonNode.Parse(line)!.AsObject();
    }

    public void Dispose()
    {
        try
        {
            if (!_process.HasExited)
            {
                _process.StandardInput.WriteLine("{\"op\": \"quit\"}");
                _process.StandardInput.Flush();
                if (!_process.WaitForExit(10_000))
                {
                    _process.Kill();
                }
            }
        }
        catch (IOException)
        {
            // The script already closed its input.
        }

        _process.Dispose();
        File.Delete(_script);
    }

    private static bool ImportsTorch(string python)
    {
        try
        {
            var start = new ProcessStartInfo(python) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
            start.ArgumentList.Add("-c");
            start.ArgumentList.Add("import torch");
            using var process = Process.Start(start);
            if (process is null)
            {
                return false;
            }

            process.StandardOutput.ReadToEnd();
            process.StandardError.ReadToEnd();
            return process.WaitForExit(60_000) && process.ExitCode == 0;
        }
        catch (System.ComponentModel.Win32Exception)
        {
            return false;
        }
    }
}
