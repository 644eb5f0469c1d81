using System.Text.Json;
using DistributedInference.Models.Loading;
using static TorchSharp.torch;

namespace DistributedInference.Models.Tests.Bert;

/// <summary>The minilm-tiny sentence-transformers fixture (tests/fixtures/minilm-tiny).</summary>
public static class MiniLmFixture
{
    public static string Folder => Path.Combine(Fixtures.Root, "minilm-tiny", "model");

    private static readonly Lazy<Dictionary<string, Tensor>> ExpectedTensors = new(() =>
    {
        Models.Runtime.LibTorch.Initialize();
        return SafeTensorsFile.ReadAll(Path.Combine(Fixtures.Root, "minilm-tiny", "expected.safetensors"));
    });

    public static Tensor Expected(string name) => ExpectedTensors.Value[name];

    public static IReadOnlyList<string> Sentences()
    {
        using var json = JsonDocument.Parse(File.ReadAllText(Path.Combine(Fixtures.Root, "minilm-tiny", "sentences.json")));
        return json.RootElement.GetProperty("sentences").EnumerateArray().Select(s => s.GetString()!).ToList();
    }

    /// <summary>A scratch copy of the model folder the test may edit; deleted with the returned handle.</summary>
    public static TempFolder Copy()
    {
        var folder = new TempFolder();
        foreach (var file in Directory.EnumerateFiles(Folder, "*", SearchOption.AllDirectories))
        {
            var target = Path.Combine(folder.Path, Path.GetRelativePath(Folder, file));
            Directory.CreateDirectory(Path.GetDirectoryName(target)!);
            File.Copy(file, target);
        }

        return folder;
    }

    public sealed class TempFolder : IDisposable
    {
        public string Path { get; } = Directory.CreateTempSubdirectory("di-bert-").FullName;

        public void Dispose() => Directory.Delete(Path, recursive: true);
    }
}
