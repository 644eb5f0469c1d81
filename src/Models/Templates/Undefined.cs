namespace DistributedInference.Models.Templates;

/// <summary>
/// jinja2's default <c>Undefined</c>: what a missing variable, key, attribute or index evaluates to. It prints as
/// nothing, is false, has length 0 and iterates as empty, equals only another undefined, and fails (with the message
/// jinja2 gives) when used any other way: arithmetic, comparison, attribute or item access, a call.
/// </summary>
internal sealed class Undefined
{
    private readonly string? _hint;
    private readonly bool _hasObject;
    private readonly object? _object;
    private readonly object? _name;
    private readonly string _errorType;

    private Undefined(string? hint, bool hasObject, object? obj, object? name, string errorType = "UndefinedError")
    {
        _hint = hint;
        _hasObject = hasObject;
        _object = obj;
        _name = name;
        _errorType = errorType;
    }

    /// <summary>A variable nothing defines: <c>'name' is undefined</c>.</summary>
    public static Undefined Variable(string name) => new(null, false, null, name);

    /// <summary>A key, attribute or index <paramref name="obj"/> lacks.</summary>
    public static Undefined Member(object? obj, object? name) => new(null, true, obj, name);

    /// <summary>An undefined with its own explanation (<c>there is no next item</c>).</summary>
    public static Undefined WithHint(string hint) => new(hint, false, null, null);

    /// <summary>jinja2's sandbox answer to an attribute it refuses (a mutating method, a dunder).</summary>
    public static Undefined Unsafe(object? obj, string attribute) =>
        new($"access to attribute {PyText.Repr(attribute)} of {PyText.Repr(PyOps.TypeName(obj))} object is unsafe.", true, obj, attribute, "SecurityError");

    public string Message
    {
        get
        {
            if (_hint is not null)
            {
                return _hint;
            }

            if (!_hasObject)
            {
                return $"{PyText.Repr(_name)} is undefined";
            }

            return _name is string
                ? $"{PyText.Repr(PyOps.ObjectTypeRepr(_object))} has no attribute {PyText.Repr(_name)}"
                : $"{PyOps.ObjectTypeRepr(_object)} has no element {PyText.Repr(_name)}";
        }
    }

    /// <summary>The error every use other than printing, testing, iterating or comparing for equality raises.</summary>
    public TemplateError Fail() => new(_errorType, Message);
}
