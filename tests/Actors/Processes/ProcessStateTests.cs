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
}
