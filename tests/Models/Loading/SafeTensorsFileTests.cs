using System.Text;
using DistributedInference.Models.Loading;
using DistributedInference.Models.Runtime;
using static TorchSharp.torch;

namespace DistributedInference.Models.Tests.Loading;

public sealed class SafeTensorsFileTests : IDisposable
{
    private readonly string _folder = Directory.CreateTempSubdirectory("di-safetensors-").FullName;

    public SafeTensorsFileTests() => LibTorch.Initialize();

    public void Dispose() => Directory.Delete(_folder, recursive: true);

    [Fact]
    public void Round_trips_every_dtype_and_shape()
    {
        var path = Path.Combine(_folder, "t.safetensors");
        var tensors = new Dictionary<string, Tensor>
        {
            ["f32"] = randn(3, 4),
            ["bf16"] = randn(2, 5).to(ScalarType.BFloat16),
            ["f16"] = randn(7).to(ScalarType.Float16),
            ["i64"] = arange(12, ScalarType.Int64).view(3, 2, 2),
            ["empty"] = zeros(0, 3),
            ["scalar"] = tensor(3.5f),
        };
        SafeTensorsFile.Write(path, tensors, new Dictionary<string, string> { ["format"] = "pt" });

        var read = SafeTensorsFile.ReadAll(path);
        Assert.Equal(tensors.Keys.Order(), read.Keys.Order());
        foreach (var (name, expected) in tensors)
        {
            Assert.Equal(expected.dtype, read[name].dtype);
            Assert.Equal(expected.shape, read[name].shape);
            Assert.True(expected.eq(read[name]).all().ToBoolean(), name);
        }
    }

    [Fact]
    public void Reads_the_fixture_written_by_python()
    {
        var file = SafeTensorsFile.Open(Fixtures.ExpectedPath);
        Assert.Equal([4L, 16, 1000], file.ShapeOf("lm_logits"));
        Assert.Equal(ScalarType.Int64, file.TypeOf("input_ids"));
    }

    [Theory]
    [InlineData("short", "shorter than the 8-byte header length")]
    [InlineData("huge-header", "does not fit")]
    [InlineData("bad-json", "not valid JSON")]
    [InlineData("bad-dtype", "unsupported dtype")]
    [InlineData("outside", "outside the")]
    [InlineData("wrong-size", "needs 16")]
    [InlineData("negative", "negative dimension")]
    [InlineData("overlap", "tensor 'b' bytes [8, 24) overlap tensor 'a' (which ends at 16)")]
    [InlineData("same-bytes", "overlap tensor 'a'")]
    [InlineData("hole", "bytes [16, 24) of the data section belong to no tensor (a hole before 'b')")]
    [InlineData("late-start", "bytes [0, 8) of the data section belong to no tensor")]
    [InlineData("trailing", "bytes [16, 24) at the end of the data section belong to no tensor")]
    public void Rejects_malformed_files_before_allocating(string kind, string message)
    {
        var path = Path.Combine(_folder, kind + ".safetensors");
        File.WriteAllBytes(path, Malformed(kind));
        var error = Assert.Throws<InvalidInputException>(() => SafeTensorsFile.Open(path));
        Assert.Contains(message, error.Message, StringComparison.Ordinal);
        Assert.StartsWith(path, error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Every_fixture_file_written_by_python_tiles_its_data_section_exactly()
    {
        var files = Directory.GetFiles(Fixtures.Root, "*.safetensors", SearchOption.AllDirectories);
        Assert.NotEmpty(files);
        Assert.All(files, file => Assert.NotEmpty(SafeTensorsFile.Open(file).Names));
    }

    [Fact]
    public void A_missing_file_is_a_clear_error() =>
        Assert.Contains("no such file", Assert.Throws<InvalidInputException>(() => SafeTensorsFile.Open(Path.Combine(_folder, "none"))).Message, StringComparison.Ordinal);

    [Fact]
    public void A_failed_write_leaves_no_file_behind()
    {
        var path = Path.Combine(_folder, "out.safetensors");
        var tensors = new Dictionary<string, Tensor> { ["ok"] = ones(2), ["complex"] = zeros(2, ScalarType.ComplexFloat32) };
        Assert.Throws<ArgumentException>(() => SafeTensorsFile.Write(path, tensors));
        Assert.Empty(Directory.GetFiles(_folder));
    }

    private static byte[] Malformed(string kind)
    {
        static byte[] With(string header, int dataBytes)
        {
            var json = Encoding.UTF8.GetBytes(header);
            return [.. BitConverter.GetBytes((long)json.Length), .. json, .. new byte[dataBytes]];
        }

        return kind switch
        {
            "short" => [1, 2, 3],
            "huge-header" => [.. BitConverter.GetBytes(1L << 40), 0, 0],
            "bad-json" => With("{\"a\": [", 0),
            "bad-dtype" => With("{\"a\":{\"dtype\":\"F8\",\"shape\":[2],\"data_offsets\":[0,2]}}", 2),
            "outside" => With("{\"a\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]}}", 8),
            "wrong-size" => With("{\"a\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,8]}}", 16),
            "negative" => With("{\"a\":{\"dtype\":\"F32\",\"shape\":[-4],\"data_offsets\":[0,0]}}", 0),
            "overlap" => With("{\"a\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]},\"b\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[8,24]}}", 24),
            "same-bytes" => With("{\"a\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]},\"b\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]}}", 16),
            "hole" => With("{\"a\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]},\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[24,32]}}", 32),
            "late-start" => With("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8,16]}}", 16),
            "trailing" => With("{\"a\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]}}", 24),
            _ => throw new ArgumentOutOfRangeException(nameof(kind)),
        };
    }
}
