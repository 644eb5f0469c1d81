using static TorchSharp.torch;

namespace DistributedInference.Models.Staging;

/// <summary>
/// What makes a <see cref="GenerationStep"/> paged: its rows' keys and values live in a paged store of the stage's own
/// layers (one per pool, named by <see cref="GenerationStep.Sequence"/>), read and written where the engine's
/// <see cref="Serving.Batching.PagedKvPlan"/> says. The step's <see cref="GenerationStep.AttentionMask"/> is the plan's
/// mask ([rows, P + T] int64) and its positions the rows' own ([rows, T] int64).
/// </summary>
/// <param name="PastSlots">[rows, P] int64: each row's past slots, right-aligned (padding columns are masked).</param>
/// <param name="NewSlots">[rows, T] int64: the slots the new positions are written to.</param>
/// <param name="Blocks">Blocks in the pool: a stage allocates its store with this many on a <paramref name="Create"/> step.</param>
/// <param name="BlockSize">Positions per block.</param>
/// <param name="Create">The first step of the pool (or the first after it was lost): each stage allocates its store
/// afresh, dropping any it held under the name. A step without it on a stage that holds no such store computes nothing
/// and comes back <see cref="GenerationStep.Lost"/>.</param>
public sealed record PagedStep(Tensor PastSlots, Tensor NewSlots, long Blocks, long BlockSize, bool Create);
