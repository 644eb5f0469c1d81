using DistributedInference.Actors.Kernel.Wire;

namespace DistributedInference.Actors.Processes;

/// <summary>The wire format of process groups (<c>di launch -- PROGRAM</c>: <see cref="ProcessState"/> across processes).</summary>
public sealed class ProcessesProtocol : WireProtocol
{
    public override void Register(WireRegistry registry) => registry
        .Add<ProcessArrived>("process-arrived", (w, m) => { w.Int(m.Round); w.Int(m.Rank); w.Bytes(m.Part); }, r => new ProcessArrived(r.Int(), r.Int(), r.Bytes()))
        .Add<ProcessesReleased>("processes-released", (w, m) => { w.Int(m.Round); w.Many(m.Parts, (w, p) => w.Bytes(p)); }, r => new ProcessesReleased(r.Int(), r.Many(r => r.Bytes())))
        .Add<ProcessRoundRefused>("process-round-refused", (w, m) => { w.Int(m.Round); w.String(m.Reason); }, r => new ProcessRoundRefused(r.Int(), r.String()))
        .Add<GetProcessArrivals>("get-process-arrivals", (w, m) => w.Int(m.Round), r => new GetProcessArrivals(r.Int()))
        .Add<ProcessArrivals>("process-arrivals", (w, m) => { w.Int(m.Round); w.Many(m.Ranks, (w, rank) => w.Int(rank)); }, r => new ProcessArrivals(r.Int(), r.Many(r => r.Int())));
}

/// <summary>
/// A process reached round <paramref name="Round"/> of its group (a barrier or a gather) with its part, already
/// encoded (<see cref="ProcessPayload"/>); sent to the main process's <see cref="ProcessGroupCoordinator"/>, which
/// answers <see cref="ProcessesReleased"/> once every process has arrived, or <see cref="ProcessRoundRefused"/>.
/// </summary>
public sealed record ProcessArrived(int Round, int Rank, byte[] Part) : IWireMessage;

/// <summary>Every process arrived at <paramref name="Round"/>: their parts, in process order.</summary>
public sealed record ProcessesReleased(int Round, IReadOnlyList<byte[]> Parts) : IWireMessage;

/// <summary>Round <paramref name="Round"/> cannot complete (parts too large for one message, a rank out of range); the reason in one line.</summary>
public sealed record ProcessRoundRefused(int Round, string Reason) : IWireMessage;

/// <summary>Which processes have arrived at <paramref name="Round"/> (asked by a process whose wait timed out).</summary>
public sealed record GetProcessArrivals(int Round) : IWireMessage;

/// <summary>The processes that have arrived at <paramref name="Round"/>, in process order.</summary>
public sealed record ProcessArrivals(int Round, IReadOnlyList<int> Ranks) : IWireMessage;
