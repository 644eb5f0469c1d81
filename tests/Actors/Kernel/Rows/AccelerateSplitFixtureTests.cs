using System.Text.Json;
using DistributedInference.Actors.Kernel.Rows;

namespace DistributedInference.Actors.Tests.Kernel.Rows;

/// <summary>Every case accelerate 1.15 answered in tests/fixtures/accelerate-split-lists.json.</summary>
public sealed class AccelerateSplitFixtureTests
{
    public static TheoryData<int> CaseIndices()
    {
        var data = new TheoryData<int>();
        for (var i = 0; i < Cases().GetArrayLength(); i++)
        {
            data.Add(i);
        }

        return data;
    }

    private static JsonElement Cases() =>
        JsonDocument.Parse(File.ReadAllText(Path.Combine(AppContext.BaseDirectory, "fixtures", "accelerate-split-lists.json")))
            .RootElement.GetProperty("cases");

    [Theory]
    [MemberData(nameof(CaseIndices))]
    public void Splits_lists_as_accelerate_does(int index)
    {
        var @case = Cases()[index];
        var input = @case.GetProperty("input").EnumerateArray().Select(e => e.ToString()).ToList();
        var ranks = @case.GetProperty("num_processes").GetInt32();
        var pad = @case.GetProperty("apply_padding").GetBoolean();
        var expected = @case.GetProperty("per_process").EnumerateArray().ToList();

        var actual = SplitRules.SplitList(input, ranks, pad);

        for (var rank = 0; rank < ranks; rank++)
        {
            if (expected[rank].ValueKind == JsonValueKind.Object)
            {
                // Accelerate raised (padding an empty list); we answer it cleanly with nothing for every rank.
                Assert.Empty(input);
                Assert.Empty(actual[rank]);
                continue;
            }

            Assert.Equal(expected[rank].EnumerateArray().Select(e => e.ToString()), actual[rank]);
            Assert.Equal(actual[rank], SplitRules.Split(input, rank, ranks, pad) as IEnumerable<object>);
        }
    }
}
