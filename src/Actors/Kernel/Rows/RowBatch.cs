using System.Collections;
using System.Runtime.CompilerServices;
using DistributedInference.Models;
using DistributedInference.Models.Staging;
using static TorchSharp.torch;

namespace DistributedInference.Actors.Kernel.Rows;

/// <summary>
/// The rows a message carries (a job's input, a device's batch and its results, a micro-batch, a call's output), one of
/// a closed set: <see cref="TensorRows"/> (a tensor, rows along dim 0, any dtype and device), <see cref="ListRows"/>
/// (prompts, or other row values: strings, numbers, booleans, null, tensors, generation's
/// <see cref="Models.Tasks.Completion"/>s, and lists or dictionaries of those), <see cref="DictionaryRows"/> (a
/// dictionary of string to those, such as input_ids and attention_mask, each [B, T] int64, nested dictionaries split by
/// their leaves' rows) and <see cref="StagedRows"/> (a pipeline's activation with its token ids and mask). Anything
/// else is refused when the batch is made (<see cref="From"/>).
/// <para>
/// Ownership, one rule: <b>the sender lets go, the receiver disposes, whatever is kept is cloned.</b> A batch put in a
/// message is the receiver's from then on: the sender never touches it again, and the receiver disposes it
/// (<see cref="Dispose"/>) once used, or hands it on in another message. A side that must keep rows while it hands them
/// on sends a <see cref="Clone"/> (its own storage) or <see cref="Handles"/> (new handles on the same storage, which the
/// receiver may dispose while the sender's stay valid). The rule is the same on every transport: local Akka delivers the
/// very object sent; remote Akka and the data plane deliver the receiver's own copy, and the transport disposes the
/// sender's batch once it is written (<see cref="ICarriesRows"/>, <see cref="Transport.Transport"/>).
/// </para>
/// <para>
/// At the user-function boundary (<c>IReplicaModel.Run</c>, <c>IStageWork.Run</c>) the device actor or stage hands the
/// function the raw <see cref="Value"/>, disposes every tensor of the batch the function did not return
/// (<see cref="TakeResult"/>) and wraps what it returned: a user function need not free anything it was given.
/// </para>
/// </summary>
public abstract class RowBatch : IDisposable
{
    private protected RowBatch()
    {
    }

    /// <summary>
    /// The raw value, as user functions take it: a <see cref="Tensor"/>, an <see cref="IList"/>, an
    /// <see cref="IReadOnlyDictionary{TKey, TValue}"/> of string to values, or a <see cref="StagedBatch"/>. Its tensors
    /// belong to this batch.
    /// </summary>
    public abstract object Value { get; }

    /// <summary>Number of rows: dim 0 of a tensor or activation, a list's length, a dictionary's common row count.</summary>
    public abstract int Count { get; }

    /// <summary>A batch of a tensor of rows; the batch owns <paramref name="rows"/>.</summary>
    public static implicit operator RowBatch(Tensor rows) => new TensorRows(rows);

    /// <summary>A batch of prompts (one string a row).</summary>
    public static implicit operator RowBatch(string[] prompts) => From(prompts);

    /// <summary>A batch of row values (strings, numbers, tensors, lists or dictionaries of them).</summary>
    /// <exception cref="ArgumentException">An item is none of those.</exception>
    public static implicit operator RowBatch(object?[] rows) => From(rows);

    /// <summary>A batch of a pipeline's staged batch (an activation with its token ids and mask).</summary>
    public static implicit operator RowBatch(StagedBatch batch) => new StagedRows(batch);

    /// <summary>The list a list batch holds (the same array, when it was made from one).</summary>
    /// <exception cref="InvalidCastException">The batch holds something else.</exception>
    public static explicit operator object?[](RowBatch rows) => rows.As<object?[]>();

    /// <summary>The tensor a tensor batch holds (the same handle: disposing the batch disposes it).</summary>
    /// <exception cref="InvalidCastException">The batch holds something else.</exception>
    public static explicit operator Tensor(RowBatch rows) => rows.As<Tensor>();

    /// <summary>Wraps <paramref name="value"/> (no copy: the batch owns its tensors from now on). A tuple is taken as a list of its items.</summary>
    /// <exception cref="ArgumentException"><paramref name="value"/> (or a value inside it) is not one of the closed set; the message names its type.</exception>
    public static RowBatch From(object value)
    {
        ArgumentNullException.ThrowIfNull(value);
        return value switch
        {
            Tensor tensor => new TensorRows(tensor),
            StagedBatch batch => new StagedRows(batch),
            IReadOnlyDictionary<string, object> dictionary => new DictionaryRows(dictionary),
            string => throw new ArgumentException("cannot split a string (wrap it in a list to split a list of strings): a row batch is a tensor, a list, a dictionary of them or a staged batch", nameof(value)),
            IList list => new ListRows(list),
            ITuple tuple => new ListRows(Enumerable.Range(0, tuple.Length).Select(i => tuple[i]).ToArray()),
            _ => throw new ArgumentException($"cannot split a {value.GetType().Name}: a row batch is a tensor, a list, a dictionary of them or a staged batch", nameof(value)),
        };
    }

    /// <summary>Like <see cref="From"/>, null for null (messages whose rows may be absent, such as a non-streamed <c>RowsCompleted</c>).</summary>
    /// <exception cref="ArgumentException">As <see cref="From"/>.</exception>
    public static RowBatch? FromNullable(object? value) => value is null ? null : From(value);

    /// <summary>
    /// <see cref="From"/> for user input at an API boundary: a refusal is the one-line <see cref="InvalidInputException"/>
    /// (the input is at fault, not the program).
    /// </summary>
    /// <exception cref="InvalidInputException"><paramref name="input"/> is null or not one of the closed set.</exception>
    public static RowBatch FromInput(object? input)
    {
        try
        {
            return From(input ?? throw new InvalidInputException("cannot split null: give a list, a tensor, or a dictionary of them"));
        }
        catch (ArgumentException e)
        {
            throw new InvalidInputException(e.Message.Split(" (Parameter", 2)[0]);
        }
    }

    /// <summary>
    /// What a user function (<c>IReplicaModel.Run</c>, <c>IStageWork.Run</c>) returned for this batch's value, taken over
    /// as the rows of the next message: the tensors of this batch that the function did not hand on are disposed now, and
    /// the returned value is owned by the result.
    /// </summary>
    /// <param name="output">What the function returned.</param>
    /// <param name="returner">Who returned it, for the error ("the model", "the stage").</param>
    /// <exception cref="InvalidInputException"><paramref name="output"/> is not one of the closed set; its tensors are disposed before this throws.</exception>
    public RowBatch TakeResult(object? output, string returner)
    {
        DisposeExcept(output);
        try
        {
            return From(output!);
        }
        catch (ArgumentException e)
        {
            RowOwnership.Dispose(output);
            throw new InvalidInputException($"{returner} returned what no message can carry: {e.Message.Split(" (Parameter", 2)[0]}");
        }
    }

    /// <summary>Joins batches of the same kind row-wise into new tensors (the parts stay their owner's).</summary>
    /// <exception cref="ArgumentException">No parts, or parts of different kinds.</exception>
    public static RowBatch Concat(IReadOnlyList<RowBatch> parts)
    {
        if (parts.Count == 0)
        {
            throw new ArgumentException("nothing to concatenate", nameof(parts));
        }

        if (parts.Any(p => p.GetType() != parts[0].GetType()))
        {
            throw new ArgumentException($"cannot join a {parts.First(p => p.GetType() != parts[0].GetType()).GetType().Name} to a {parts[0].GetType().Name}", nameof(parts));
        }

        return From(Rows.Concat(parts.Select(p => p.Value).ToList()));
    }

    /// <summary>
    /// <paramref name="count"/> blank rows shaped like this batch's rows: zeros for a tensor (new storage the caller owns),
    /// nulls for a list, key by key for a dictionary.
    /// </summary>
    public RowBatch Blank(int count) => From(Rows.Blank(Value, count));

    /// <summary>
    /// Disposes every tensor handle this batch holds, each once (a handle held twice, such as a staged batch's activation
    /// that is its token ids, is disposed once). Strings and other plain values are left alone.
    /// </summary>
    public void Dispose() => RowOwnership.Dispose(Value);

    /// <summary>
    /// Disposes every tensor of this batch that <paramref name="kept"/> does not also hold (by reference): what a function
    /// that took this batch's value and returned <paramref name="kept"/> did not hand on.
    /// </summary>
    public void DisposeExcept(object? kept) => RowOwnership.DisposeExcept(Value, kept);

    /// <summary>Disposes only the handles <see cref="Slice"/> made (a tensor's or a dictionary's views), never a list's items.</summary>
    public void DisposeViews() => RowOwnership.DisposeViews(Value);

    /// <summary>A deep copy: every tensor cloned into its own storage (the caller owns it), lists and dictionaries copied.</summary>
    public RowBatch Clone() => From(RowOwnership.Clone(Value)!);

    /// <summary>Rows [<paramref name="start"/>, + <paramref name="count"/>) as views (new handles the caller owns; list items shared).</summary>
    /// <exception cref="InvalidInputException">The batch cannot be split (see <see cref="Count"/>).</exception>
    public RowBatch Slice(int start, int count) => From(Rows.Slice(Value, start, count));

    /// <summary>
    /// The same rows with handles of their own, for a sender that keeps this batch while a receiver disposes what it is
    /// sent: tensors (a dictionary's or staged batch's too) are new handles on the same storage; tensors inside a list are
    /// cloned (a list's items are not cut).
    /// </summary>
    public RowBatch Handles() => From(RowOwnership.Handles(Value)!);

    /// <summary>
    /// Rows [<paramref name="start"/>, + <paramref name="count"/>) followed by <paramref name="padding"/> copies of the last
    /// row, with handles of their own (views of tensors, tensors in a list cloned): what a receiver may dispose while this
    /// batch stays valid.
    /// </summary>
    /// <exception cref="InvalidInputException">The batch cannot be split (see <see cref="Count"/>).</exception>
    public RowBatch Cut(int start, int count, int padding = 0) =>
        From(RowOwnership.Detach(Rows.Pad(Rows.Slice(Value, start, count), Value, padding)));

    /// <summary>
    /// The first <paramref name="count"/> rows, taking this batch: tensors are cut to views of those rows and this batch's
    /// handles disposed, list items beyond the count disposed. Do not use this batch afterwards.
    /// </summary>
    public RowBatch Take(int count) => From(RowOwnership.Take(Value, count));

    /// <summary>The raw value as <typeparamref name="T"/>.</summary>
    /// <exception cref="InvalidCastException">The batch holds something else.</exception>
    public T As<T>() => Value is T typed ? typed : throw new InvalidCastException($"the row batch holds a {Value.GetType().Name}, not a {typeof(T).Name}");

    /// <inheritdoc/>
    public override string ToString() => $"{GetType().Name} ({Value.GetType().Name})";

    // A value inside a list or dictionary: what the wire codec can carry.
    private protected static void CheckRowValue(object? value, string where, int depth)
    {
        switch (value)
        {
            case null or bool or int or long or float or double or string or Tensor or Models.Tasks.Completion:
                return;
            case IReadOnlyDictionary<string, object> dictionary when depth < 32:
                foreach (var (key, item) in dictionary)
                {
                    CheckRowValue(item, $"dictionary value '{key}'", depth + 1);
                }

                return;
            case IList list when depth < 32:
                foreach (var item in list)
                {
                    CheckRowValue(item, "list item", depth + 1);
                }

                return;
            default:
                throw new ArgumentException($"a row batch cannot hold a {value.GetType().Name} ({where}): its values are tensors, strings, numbers, booleans, null, completions, and lists or dictionaries of them", nameof(value));
        }
    }
}
