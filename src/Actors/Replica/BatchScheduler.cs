namespace DistributedInference.Actors.Replica;

/// <summary>
/// The policy of one replica job, without actors or tensors: which batch each device runs next, and what happens when
/// a batch completes, fails, times out or loses its device. Each device keeps <see cref="InFlightPerDevice"/> batches in
/// flight so it never waits for the next; a device that runs out of its own batches takes the last queued batch of the
/// busiest one (work stealing); a batch that fails, times out or loses its device is queued again first on the device the
/// router picks (avoiding the one it failed on; a device that timed out gets no new work until it answers); a batch
/// that failed <c>maxAttempts</c> times is split in two halves (padding dropped) tried on their own, down to single rows,
/// and a row that still fails is reported failed alone. A late answer for a batch that is settled is ignored, so every
/// batch (and row) is answered once. <see cref="ReplicaJob"/> is the actor that drives it.
/// </summary>
/// <typeparam name="TDevice">How devices are named (actor references in the job; anything in tests).</typeparam>
public sealed class BatchScheduler<TDevice>
    where TDevice : notnull
{
    /// <summary>Batches each device has in flight at most.</summary>
    public const int InFlightPerDevice = 2;

    private readonly List<Batch> _batches = [];
    private readonly List<int> _attempts = [];
    private readonly List<bool> _settled = [];
    private readonly Dictionary<TDevice, LinkedList<int>> _queued = [];
    private readonly Dictionary<TDevice, HashSet<int>> _inFlight = [];
    private readonly HashSet<TDevice> _unresponsive = [];
    private readonly List<TDevice> _order = [];
    private readonly int _maxAttempts;
    private readonly IBatchRouter<TDevice> _router;
    private int _settledCount;

    /// <param name="devices">The devices, in rank order; device i is given the i-th list of <paramref name="plan"/>.</param>
    /// <param name="plan">Each device's batches (<see cref="BatchPlan.Cut"/>).</param>
    /// <param name="maxAttempts">Attempts per batch before it is split.</param>
    /// <param name="router">Where moved batches go; least loaded by default.</param>
    public BatchScheduler(IReadOnlyList<TDevice> devices, IReadOnlyList<IReadOnlyList<Batch>> plan, int maxAttempts, IBatchRouter<TDevice>? router = null)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(maxAttempts);
        if (devices.Count != plan.Count)
        {
            throw new ArgumentException($"{devices.Count} devices for a plan of {plan.Count}", nameof(plan));
        }

        _maxAttempts = maxAttempts;
        _router = router ?? LeastLoadedRouter<TDevice>.Instance;
        for (var rank = 0; rank < devices.Count; rank++)
        {
            Join(devices[rank]);
            foreach (var batch in plan[rank])
            {
                _queued[devices[rank]].AddLast(AddBatch(batch));
            }
        }
    }

    /// <summary>Every batch so far (halves of split batches are added at the end).</summary>
    public IReadOnlyList<Batch> Batches => _batches;

    /// <summary>Whether every batch is settled (answered, or split, or its one row failed).</summary>
    public bool Done => _settledCount == _batches.Count;

    /// <summary>Batches queued again after a failure, a timeout or a lost device.</summary>
    public int Resent { get; private set; }

    /// <summary>The devices in use.</summary>
    public IReadOnlyCollection<TDevice> Devices => _queued.Keys;

    /// <summary>The attempt a batch is on (1 once first sent).</summary>
    public int Attempt(int batch) => _attempts[batch];

    /// <summary>Whether <paramref name="device"/> is in use.</summary>
    public bool Uses(TDevice device) => _queued.ContainsKey(device);

    /// <summary>Adds a device (one that joined after the start): it has no queue of its own and steals work.</summary>
    public void Join(TDevice device)
    {
        if (_queued.TryAdd(device, new LinkedList<int>()))
        {
            _inFlight[device] = [];
            _order.Add(device);
        }
    }

    /// <summary>
    /// The batches <paramref name="device"/> should be sent now, in order (its own queue first, then stolen from the
    /// busiest queue's tail), up to <see cref="InFlightPerDevice"/> in flight; each counts as an attempt.
    /// </summary>
    public IReadOnlyList<int> Next(TDevice device)
    {
        var next = new List<int>();
        if (!_queued.TryGetValue(device, out var own) || _unresponsive.Contains(device))
        {
            return next;
        }

        while (_inFlight[device].Count < InFlightPerDevice && TakeNext(own) is { } index)
        {
            if (_settled[index])
            {
                continue;
            }

            _attempts[index]++;
            _inFlight[device].Add(index);
            next.Add(index);
        }

        return next;
    }

    /// <summary>Every device's <see cref="Next"/>, in device order.</summary>
    public IReadOnlyList<(TDevice Device, int Batch)> NextForAll() =>
        _order.Where(_queued.ContainsKey).SelectMany(device => Next(device).Select(batch => (device, batch))).ToList();

    /// <summary>
    /// <paramref name="device"/> answered <paramref name="batch"/>: true when the answer is the batch's first (take its
    /// results), false for a late duplicate of a batch settled already (drop them).
    /// </summary>
    public bool Completed(TDevice device, int batch)
    {
        _unresponsive.Remove(device);
        _inFlight.GetValueOrDefault(device)?.Remove(batch);
        if (_settled[batch])
        {
            return false;
        }

        Settle(batch);
        return true;
    }

    /// <summary>
    /// <paramref name="device"/> could not run <paramref name="batch"/> (a failure another device may not have): it is
    /// tried again elsewhere, or split (see the class notes).
    /// </summary>
    public Retry Failed(TDevice device, int batch, string reason)
    {
        _unresponsive.Remove(device);
        _inFlight.GetValueOrDefault(device)?.Remove(batch);
        return _settled[batch] ? Retry.None : Again(batch, device, reason);
    }

    /// <summary>
    /// Attempt <paramref name="attempt"/> of <paramref name="batch"/> was not answered in time: the device it ran on gets no
    /// new work until it answers again (its queue moves on), and the batch is tried again elsewhere.
    /// </summary>
    public Retry TimedOut(int batch, int attempt, string reason)
    {
        if (_settled[batch] || _attempts[batch] != attempt)
        {
            return Retry.None;
        }

        // Not in flight: its device stopped and it was queued again already.
        var device = _inFlight.FirstOrDefault(pair => pair.Value.Contains(batch)).Key;
        if (device is null)
        {
            return Retry.None;
        }

        _inFlight[device].Remove(batch);
        _unresponsive.Add(device);
        var queued = _queued[device].ToList();
        _queued[device].Clear();
        foreach (var index in queued)
        {
            Route(avoid: device).AddLast(index);
        }

        return Again(batch, device, reason);
    }

    /// <summary>
    /// <paramref name="device"/> stopped (or was set aside): its queue moves to the others, and what it had in flight is
    /// tried again. Null when it was not in use; otherwise what the lost batches came to.
    /// </summary>
    public Lost? Stopped(TDevice device)
    {
        _unresponsive.Remove(device);
        if (!_queued.Remove(device, out var queued))
        {
            return null;
        }

        _order.Remove(device);
        _inFlight.Remove(device, out var inFlight);
        if (_queued.Count == 0)
        {
            return new Lost(queued.Count + (inFlight?.Count ?? 0), NoDevicesLeft: true, []);
        }

        foreach (var index in queued)
        {
            Route(avoid: default).AddLast(index);
        }

        var retries = (inFlight ?? []).Where(index => !_settled[index]).Select(index => Again(index, default, "its device stopped")).ToList();
        return new Lost(queued.Count + (inFlight?.Count ?? 0), NoDevicesLeft: false, retries);
    }

    private int AddBatch(Batch batch)
    {
        _batches.Add(batch);
        _attempts.Add(0);
        _settled.Add(false);
        return _batches.Count - 1;
    }

    private void Settle(int batch)
    {
        _settled[batch] = true;
        _settledCount++;
    }

    // Queued again first (it waited long enough), or split when it has had its attempts.
    private Retry Again(int batch, TDevice? failedOn, string reason)
    {
        if (_attempts[batch] < _maxAttempts)
        {
            Resent++;
            Route(avoid: failedOn).AddFirst(batch);
            return new Retry(RetryKind.Queued, batch, null, reason);
        }

        var failed = _batches[batch];
        var error = $"failed {_attempts[batch]} times; last: {reason}";
        Settle(batch);
        if (failed.Count > 1)
        {
            var half = failed.Count / 2;
            foreach (var part in new[] { new Batch(failed.Start + half, failed.Count - half, 0), new Batch(failed.Start, half, 0) })
            {
                Route(avoid: default).AddFirst(AddBatch(part));
            }

            return new Retry(RetryKind.Split, batch, null, error);
        }

        return failed.Count == 1 ? new Retry(RetryKind.RowFailed, batch, failed.Start, error) : new Retry(RetryKind.Split, batch, null, error);
    }

    private LinkedList<int> Route(TDevice? avoid)
    {
        var candidates = _order.Where(d => !EqualityComparer<TDevice?>.Default.Equals(d, avoid) && !_unresponsive.Contains(d)).ToList();
        return _queued[_router.Choose(candidates.Count > 0 ? candidates : _order, d => _queued[d].Count + _inFlight[d].Count)];
    }

    // The device's own next batch, else the last queued batch of the longest queue.
    private int? TakeNext(LinkedList<int> own)
    {
        var source = own.Count > 0 ? own : _queued.Values.MaxBy(q => q.Count);
        if (source is null || source.Count == 0)
        {
            return null;
        }

        var node = ReferenceEquals(source, own) ? source.First! : source.Last!;
        source.Remove(node);
        return node.Value;
    }

    /// <summary>What became of a batch that failed, timed out or lost its device.</summary>
    public sealed record Retry(RetryKind Kind, int Batch, int? FailedRow, string Reason)
    {
        public static readonly Retry None = new(RetryKind.None, -1, null, string.Empty);
    }

    /// <summary>What a device's loss came to: batches it held, whether any device is left, what became of those in flight.</summary>
    public sealed record Lost(int Batches, bool NoDevicesLeft, IReadOnlyList<Retry> Retries);
}

/// <summary>What became of a batch that failed: nothing (it was settled already), queued again, split in two, or its one row failed.</summary>
public enum RetryKind
{
    None,
    Queued,
    Split,
    RowFailed,
}
