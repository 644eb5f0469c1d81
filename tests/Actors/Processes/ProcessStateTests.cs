using DistributedInference.Actors.Processes;
using static TorchSharp.torch;

namespace DistributedInference.Actors.Tests.Processes;

public sealed class ProcessStateTests
{
    // One thread per "process", all started at once: they meet at barriers.
    private static void RunEach(IReadOnlyList<ProcessState> states, Action<ProcessState> body)
    {
        var errors = new System.Collections.Concurrent.ConcurrentBag<Exception>();
        var threads = states.Select(state => new Thread(() =>
        {
            try
            {
                body(state);
            }
            catch (Exception e)
            {
                errors.Add(e);
            }
        })).ToList();
        threads.ForEach(t => t.Start());
        threads.ForEach(t => t.Join());
        Assert.Empty(errors);
    }

    [Fact]
    public void A_single_process_gets_everything()
    {
        var state = ProcessState.Single();
        Assert.Equal((0, 1, true, true), (state.ProcessIndex, state.NumProcesses, state.IsMainProcess, state.IsLastProcess));
        Assert.Equal(["a dog", "a cat", "a chicken"], state.SplitBetweenProcesses(["a dog", "a cat", "a chicken"], applyPadding: true));
        state.WaitForEveryone();
        Assert.Equal([1, 2], state.Gather([1, 2], 2));
    }

    [Theory]
    [InlineData(3, 5)]
    [InlineData(4, 5)]
    [InlineData(4, 2)]
    public void Processes_split_run_and_gather_back_in_input_order(int processes, int items)
    {
        var prompts = Enumerable.Range(0, items).Select(i => $"prompt {i}").ToList();
        var states = LocalProcessGroup.Create(processes);
        var gathered = new IReadOnlyList<string>[processes];

        RunEach(states, state =>
        {
            var mine = state.SplitBetweenProcesses(prompts, applyPadding: true);
            var results = mine.Select(p => p.ToUpperInvariant()).ToList();
            state.WaitForEveryone();
            gathered[state.ProcessIndex] = state.Gather(results, prompts.Count, applyPadding: true);
        });

        Assert.All(gathered, g => Assert.Equal(prompts.Select(p => p.ToUpperInvariant()), g));
        Assert.Equal(1, states.Count(s => s.IsMainProcess));
        Assert.True(states[^1].IsLastProcess);
    }

    [Fact]
    public void Tensors_gather_back_without_padding()
    {
        var states = LocalProcessGroup.Create(3);
        using var input = arange(7, ScalarType.Int64);
        var gathered = new Tensor[3];
        RunEach(states, state =>
        {
            var mine = (Tensor)state.SplitBetweenProcesses(input, applyPadding: true);
            gathered[state.ProcessIndex] = (Tensor)state.Gather(mine * 10, 7, applyPadding: true);
        });
        Assert.All(gathered, g => Assert.Equal(new long[] { 0, 10, 20, 30, 40, 50, 60 }, g.data<long>().ToArray()));
    }

    [Fact]
    public void A_barrier_that_times_out_names_the_processes_that_did_not_arrive()
    {
        var states = LocalProcessGroup.Create(3);
        var error = Assert.Throws<ProcessGroupTimeoutException>(() => states[0].WaitForEveryone(TimeSpan.FromMilliseconds(200)));
        Assert.Equal([1, 2], error.Missing);
        Assert.Contains("process(es) 1, 2 did not arrive", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Gather_object_returns_every_process_value_in_process_order()
    {
        var states = LocalProcessGroup.Create(3);
        var gathered = new IReadOnlyList<string>[3];
        RunEach(states, state => gathered[state.ProcessIndex] = state.GatherObject($"from {state.ProcessIndex}"));
        Assert.All(gathered, g => Assert.Equal(["from 0", "from 1", "from 2"], g));
    }

    [Fact]
    public void The_main_process_runs_its_block_before_the_others_enter_theirs()
    {
        var states = LocalProcessGroup.Create(3);
        var order = new System.Collections.Concurrent.ConcurrentQueue<string>();
        RunEach(states, state =>
        {
            using (state.MainProcessFirst())
            {
                order.Enqueue(state.IsMainProcess ? "main" : "other");
            }
        });
        Assert.Equal(["main", "other", "other"], order);
    }

    [Fact]
    public void Outside_a_launch_the_state_from_the_environment_is_a_group_of_one()
    {
        Assert.Null(Environment.GetEnvironmentVariable(ProcessEnvironment.WorldSize));
        using var state = ProcessState.FromEnvironment();
        Assert.Equal((0, 0, 1, true, true), (state.ProcessIndex, state.LocalProcessIndex, state.NumProcesses, state.IsMainProcess, state.IsLastProcess));
        Assert.Equal([1, 2, 3], state.GatherObject(1).Concat(state.Gather([2, 3], 2)));
    }

    [Fact]
    public void Values_cross_processes_as_codec_values_or_json_and_come_back_as_the_callers_types()
    {
        var list = ProcessPayload.To<IReadOnlyList<string>>(ProcessPayload.Decode(ProcessPayload.Encode(new List<string> { "a", "b" }, typeof(List<string>)), typeof(List<string>)));
        Assert.Equal(["a", "b"], list);
        Assert.Equal(3L, ProcessPayload.To<long>(ProcessPayload.Decode(ProcessPayload.Encode(3, typeof(int)), typeof(int))));
        var record = new Part(2, "x");
        Assert.Equal(record, ProcessPayload.To<Part>(ProcessPayload.Decode(ProcessPayload.Encode(record, typeof(Part)), typeof(Part))));
    }

    public sealed record Part(int Rank, string Text);
}
