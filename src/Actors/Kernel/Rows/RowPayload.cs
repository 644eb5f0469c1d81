using System.Collections;
using System.Runtime.CompilerServices;
using DistributedInference.Models;
using DistributedInference.Models.Staging;
using static TorchSharp.torch;

namespace DistributedInference.Actors.Kernel.Rows;

/// <summary>
/// The rows a message carries (<c>SubmitJob.Input</c>, <c>JobInput.Input</c>, <c>RunBatch.Rows</c>,
/// <c>BatchCompleted.Results</c>, <c>RowsCompleted.Results</c>, <c>JobCompleted.Results</c>, <c>RunPipeline.Input</c>,
/// <c>RunPipelineStep.Payload</c>, <c>PipelineStepCompleted.Output</c>, <c>PipelineCompleted.Output</c>,
/// <c>MicroBatch.Payload</c>, <c>OutputGathered.Output</c>), one of a closed set (<see cref="RowPayloadKind"/>): a tensor
/// of rows (rows along dim 0, any dtype and device), prompts or other row values in a list (strings, numbers, booleans,
/// null, tensors, generation's <see cref="Models.Tasks.Completion"/>s, and lists or dictionaries of those), a dictionary of string to those (such as input_ids and
/// attention_mask, each [B, T] int64), or a pipeline's <see cref="StagedBatch"/>. Anything else is refused when the
/// payload is made (<see cref="From"/>).
/// <para>
/// Ownership, one rule: <b>the sender lets go, the receiver disposes, whatever is kept is cloned.</b> A payload put in
/// a message is the receiver's from then on: the sender never touches it again, and the receiver disposes it
/// (<see cref="Dispose"/>) once used, or hands it on in another message. A side that must keep rows while it hands them
/// on sends a <see cref="Clone"/> (its own storage) or <see cref="Handles"/> (new handles on the same storage, which the
/// receiver may dispose while the sender's stay valid). The rule is the same on every transport: local Akka delivers
/// the very object sent; remote Akka and the data plane deliver the receiver's own copy, and dispose the sender's
/// payload once they have written it (<see cref="ICarriesRows"/>: the data plane after its frame, Akka's serializer
/// after the message's bytes).
/// </para>
/// <para>
/// At the user-function boundary (<c>IReplicaModel.Run</c>, <c>IStageWork.Run</c>) the device actor or stage unwraps
/// <see cref="Value"/>, calls the function, disposes every tensor of the payload the function did not return
/// (<see cref="DisposeExcept"/>), and wraps what it returned (<see cref="From"/>): a user function need not free
/// anything it was given.
/// </para>
/// </summary>
public sealed class RowPayload : IDisposable
{
    private RowPayload(object value, RowPayloadKind kind)
    {
        Value = value;
        Kind = kind;
    }

    /// <summary>
    /// The raw value, as models and stage work take it: a <see cref="Tensor"/>, an <see cref="IList"/>, an
    /// <see cref="IReadOnlyDictionary{TKey, TValue}"/> of string to values, or a <see cref="StagedBatch"/>. Its tensors
    /// belong to this payload (see the ownership rule above).
    /// </summary>
    public object Value { get; }

    /// <summary>Which of the closed set of payloads <see cref="Value"/> is.</summary>
    public RowPayloadKind Kind { get; }

    /// <summary>
    /// Number of rows: dim 0 of a tensor (or of a staged batch's activation), a list's length, the common row count
    /// of a dictionary's values.
    /// </summary>
    /// <exception cref="InvalidInputException">The payload has no rows (a 0-dimensional tensor, an empty dictionary,
    /// a dictionary whose values differ in rows or hold a plain value).</exception>
    public int Count => Value is StagedBatch batch ? Rows.Count(batch.Hidden) : Rows.Count(Value);

    /// <summary>A payload of a tensor of rows; the payload owns <paramref name="rows"/>.</summary>
    public static implicit operator RowPayload(Tensor rows) => From(rows);

    /// <summary>A payload of prompts (one string a row).</summary>
    public static implicit operator RowPayload(string[] prompts) => From(prompts);

    /// <summary>A payload of row values (strings, numbers, tensors, lists or dictionaries of them).</summary>
    /// <exception cref="ArgumentException">An item is none of those.</exception>
    public static implicit operator RowPayload(object?[] rows) => From(rows);

    /// <summary>A payload of a pipeline's staged batch (an activation with its token ids and mask).</summary>
    public static implicit operator RowPayload(StagedBatch batch) => From(batch);

    /// <summary>The list a list payload holds (the same array, when it was made from one).</summary>
    /// <exception cref="InvalidCastException">The payload holds something else.</exception>
    public static explicit operator object?[](RowPayload payload) => payload.As<object?[]>();

    /// <summary>The tensor a tensor payload holds (the same handle: disposing the payload disposes it).</summary>
    /// <exception cref="InvalidCastException">The payload holds something else.</exception>
    public static explicit operator Tensor(RowPayload payload) => payload.As<Tensor>();

    /// <summary>
    /// Wraps <paramref name="value"/> (no copy: the payload owns its tensors from now on). A tuple is taken as a list
    /// of its items.
    /// </summary>
    /// <exception cref="ArgumentException"><paramref name="value"/> (or a value inside it) is not one of the closed
    /// set; the message names its type.</exception>
    public static RowPayload From(object value)
    {
        ArgumentNullException.ThrowIfNull(value);
        switch (value)
        {
            case Tensor:
                return new RowPayload(value, RowPayloadKind.Tensor);
            case StagedBatch:
                return new RowPayload(value, RowPayloadKind.StagedBatch);
            case IReadOnlyDictionary<string, object> dictionary:
                foreach (var (key, item) in dictionary)
                {
                    CheckRowValue(item, $"dictionary value '{key}'", depth: 1);
                }

                return new RowPayload(value, RowPayloadKind.Dictionary);
            case string:
                throw new ArgumentException("cannot split a string (wrap it in a list to split a list of strings): a row payload is a tensor, a list, a dictionary of them or a staged batch", nameof(value));
            case IList list:
                var prompts = true;
                foreach (var item in list)
                {
                    CheckRowValue(item, "list item", depth: 1);
                    prompts &= item is string;
                }

                return new RowPayload(value, prompts && list.Count > 0 ? RowPayloadKind.Prompts : RowPayloadKind.List);
            case ITuple tuple:
                return From(Enumerable.Range(0, tuple.Length).Select(i => tuple[i]).ToArray());
            default:
                throw new ArgumentException($"cannot split a {value.GetType().Name}: a row payload is a tensor, a list, a dictionary of them or a staged batch", nameof(value));
        }
    }

    /// <summary>Like <see cref="From"/>, null for null (messages whose rows may be absent, such as a non-streamed <c>RowsCompleted</c>).</summary>
    /// <exception cref="ArgumentException">As <see cref="From"/>.</exception>
    public static RowPayload? FromNullable(object? value) => value is null ? null : From(value);

    /// <summary>
    /// <see cref="From"/> for user input at an API boundary: a refusal is the one-line
    /// <see cref="InvalidInputException"/> (the input is at fault, not the program).
    /// </summary>
    /// <exception cref="InvalidInputException"><paramref name="input"/> is null or not one of the closed set.</exception>
    public static RowPayload FromInput(object? input)
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
    /// What a user function (<c>IReplicaModel.Run</c>, <c>IStageWork.Run</c>) returned for this payload's value, taken
    /// over as the payload of the next message: the tensors of this payload that the function did not hand on are
    /// disposed now, and the returned value is owned by the result.
    /// </summary>
    /// <param name="output">What the function returned.</param>
    /// <param name="returner">Who returned it, for the error ("the model", "the stage").</param>
    /// <exception cref="InvalidInputException">
    /// <paramref name="output"/> is not one of the closed set; its tensors are disposed before this throws.
    /// </exception>
    public RowPayload TakeResult(object? output, string returner)
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

    /// <summary>
    /// Disposes every tensor handle this payload holds, each once (a handle held twice, such as a staged batch's
    /// activation that is its token ids, is disposed once), a staged batch's ids and mask included. Strings and other
    /// plain values are left alone.
    /// </summary>
    public void Dispose() => RowOwnership.Dispose(Value);

    /// <summary>
    /// Disposes every tensor of this payload that <paramref name="kept"/> does not also hold (by reference): what a
    /// function that took this payload's value and returned <paramref name="kept"/> did not hand on.
    /// </summary>
    public void DisposeExcept(object? kept) => RowOwnership.DisposeExcept(Value, kept);

    /// <summary>A deep copy: every tensor cloned into its own storage (the caller owns it), lists and dictionaries copied.</summary>
    public RowPayload Clone() => new(RowOwnership.Clone(Value)!, Kind);

    /// <summary>Rows [<paramref name="start"/>, + <paramref name="count"/>) as views (new handles the caller owns; list items shared).</summary>
    /// <exception cref="InvalidInputException">The payload cannot be split (see <see cref="Count"/>).</exception>
    public RowPayload Slice(int start, int count) => new(Rows.Slice(Value, start, count), Kind);

    /// <summary>
    /// The same rows with handles of their own, for a sender that keeps this payload while a receiver disposes what it
    /// is sent: tensors (and a dictionary's or staged batch's tensors) are new handles on the same storage; tensors inside a
    /// list are cloned (a list's items are not cut).
    /// </summary>
    public RowPayload Handles() => new(RowOwnership.Handles(Value)!, Kind);

    /// <summary>
    /// Rows [<paramref name="start"/>, + <paramref name="count"/>) followed by <paramref name="padding"/> copies of the
    /// last row, as a payload with handles of its own (views of tensors, tensors in a list cloned): what a receiver
    /// may dispose while this payload stays valid.
    /// </summary>
    /// <exception cref="InvalidInputException">The payload cannot be split (see <see cref="Count"/>).</exception>
    public RowPayload Cut(int start, int count, int padding = 0) =>
        new(RowOwnership.Detach(Rows.Pad(Rows.Slice(Value, start, count), Value, padding)), Kind);

    /// <summary>
    /// The first <paramref name="count"/> rows, taking this payload: tensors are cut to views of those rows and this
    /// payload's handles disposed, list items beyond the count disposed. Do not use this payload afterwards.
    /// </summary>
    public RowPayload Take(int count) => new(RowOwnership.Take(Value, count), Kind);

    /// <summary>Joins payloads of the same kind row-wise into new tensors (the parts stay their owner's).</summary>
    /// <exception cref="ArgumentException">No parts.</exception>
    public static RowPayload Concat(IReadOnlyList<RowPayload> parts) => From(Rows.Concat(parts.Select(p => p.Value).ToList()));

    /// <summary>
    /// The raw value as <typeparamref name="T"/>.
    /// </summary>
    /// <exception cref="InvalidCastException">The payload holds something else.</exception>
    public T As<T>() => Value is T typed ? typed : throw new InvalidCastException($"the payload holds a {Value.GetType().Name}, not a {typeof(T).Name}");

    /// <inheritdoc/>
    public override string ToString() => $"{Kind} payload";

    // A value inside a list or dictionary: what the serializer can carry.
    private static void CheckRowValue(object? value, string where, int depth)
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
                throw new ArgumentException($"a row payload cannot hold a {value.GetType().Name} ({where}): its values are tensors, strings, numbers, booleans, null, completions, and lists or dictionaries of them", nameof(value));
        }
    }
}

/// <summary>The closed set of payloads a <see cref="RowPayload"/> holds.</summary>
public enum RowPayloadKind
{
    /// <summary>A tensor of rows (rows along dim 0).</summary>
    Tensor,

    /// <summary>A list of strings, one prompt a row.</summary>
    Prompts,

    /// <summary>A list of row values (strings, numbers, tensors, lists or dictionaries of them).</summary>
    List,

    /// <summary>A dictionary of string to row values (each with the same rows), such as input_ids and attention_mask.</summary>
    Dictionary,

    /// <summary>A pipeline's activation with its token ids and mask.</summary>
    StagedBatch,
}
