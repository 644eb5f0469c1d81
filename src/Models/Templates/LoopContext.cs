namespace DistributedInference.Models.Templates;

/// <summary>
/// jinja2's <c>loop</c> variable: <c>index</c>, <c>index0</c>, <c>revindex</c>, <c>revindex0</c>, <c>first</c>, <c>last</c>,
/// <c>length</c>, <c>depth</c>, <c>depth0</c>, <c>previtem</c>, <c>nextitem</c>, <c>cycle(...)</c>, <c>changed(...)</c>;
/// callable in a <c>recursive</c> loop to render the body over children. The items (after the loop's <c>if</c> filter)
/// are taken up front, so <c>length</c> and <c>last</c> are always known.
/// </summary>
internal sealed class LoopContext(IReadOnlyList<object?> items, int depth0, Func<object?, int, string>? recurse) : ITemplateCallable
{
    private object? _lastChanged = CallArguments.Missing;

    public IReadOnlyList<object?> Items { get; } = items;

    public int Index0 { get; set; } = -1;

    public int Length => Items.Count;

    public string Name => "loop";

    /// <summary>An attribute of the loop, or <see cref="CallArguments.Missing"/>.</summary>
    public object? Attribute(string name) => name switch
    {
        "index" => (long)Index0 + 1,
        "index0" => (long)Index0,
        "revindex" => (long)(Length - Index0),
        "revindex0" => (long)(Length - Index0 - 1),
        "first" => Index0 == 0,
        "last" => Index0 == Length - 1,
        "length" => (long)Length,
        "depth" => (long)depth0 + 1,
        "depth0" => (long)depth0,
        "previtem" => Index0 > 0 ? Items[Index0 - 1] : Undefined.WithHint("there is no previous item"),
        "nextitem" => Index0 + 1 < Length ? Items[Index0 + 1] : Undefined.WithHint("there is no next item"),
        "cycle" => new BuiltinFunction("cycle", (_, args) => Cycle(args)),
        "changed" => new BuiltinFunction("changed", (_, args) => Changed(args)),
        _ => CallArguments.Missing,
    };

    private object? Cycle(CallArguments arguments)
    {
        if (arguments.Positional.Count == 0)
        {
            throw TemplateError.Type("no items for cycling given");
        }

        return arguments.Positional[Index0 % arguments.Positional.Count];
    }

    private bool Changed(CallArguments arguments)
    {
        var value = new PyTuple(arguments.Positional);
        if (_lastChanged is PyTuple last && PyOps.Equal(last, value))
        {
            return false;
        }

        _lastChanged = value;
        return true;
    }

    /// <summary><c>loop(children)</c> in a recursive loop: the body rendered over the children, one level deeper.</summary>
    public object? Call(TemplateRenderer renderer, CallArguments arguments)
    {
        if (recurse is null)
        {
            throw TemplateError.Type("The loop must have the 'recursive' marker to be called recursively.");
        }

        var values = arguments.Bind("loop", ["iterable"], required: 1);
        return recurse(values[0], depth0 + 1);
    }
}
