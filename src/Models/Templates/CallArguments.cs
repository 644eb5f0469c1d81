namespace DistributedInference.Models.Templates;

/// <summary>The positional and keyword arguments of one call (a function, method, filter, test or macro).</summary>
internal sealed class CallArguments(IReadOnlyList<object?> positional, IReadOnlyList<KeyValuePair<string, object?>> keywords)
{
    /// <summary>Marks a parameter the call did not give.</summary>
    public static readonly object Missing = new();

    public static readonly CallArguments None = new([], []);

    public IReadOnlyList<object?> Positional { get; } = positional;

    public IReadOnlyList<KeyValuePair<string, object?>> Keywords { get; } = keywords;

    public static CallArguments Of(params object?[] positional) => new(positional, []);

    /// <summary>
    /// Binds the arguments to <paramref name="parameters"/> as Python does: positionals in order, then keywords by name;
    /// a parameter given neither way is <see cref="Missing"/>, or an error when it is among the first
    /// <paramref name="required"/>.
    /// </summary>
    /// <exception cref="TemplateError">Too many positionals, an unknown or repeated keyword, a required one missing.</exception>
    public object?[] Bind(string function, IReadOnlyList<string> parameters, int required = 0)
    {
        if (Positional.Count > parameters.Count)
        {
            throw TemplateError.Type($"{function}() takes {(parameters.Count == required ? "exactly" : "at most")} {parameters.Count} argument{(parameters.Count == 1 ? string.Empty : "s")} ({Positional.Count} given)");
        }

        var values = new object?[parameters.Count];
        Array.Fill(values, Missing);
        for (var i = 0; i < Positional.Count; i++)
        {
            values[i] = Positional[i];
        }

        foreach (var (name, value) in Keywords)
        {
            var index = IndexOf(parameters, name);
            if (index < 0)
            {
                throw TemplateError.Type($"{function}() got an unexpected keyword argument {PyText.Repr(name)}");
            }

            if (values[index] != Missing)
            {
                throw TemplateError.Type($"{function}() got multiple values for argument {PyText.Repr(name)}");
            }

            values[index] = value;
        }

        for (var i = 0; i < required; i++)
        {
            if (values[i] == Missing)
            {
                throw TemplateError.Type($"{function}() missing required argument: {PyText.Repr(parameters[i])}");
            }
        }

        return values;
    }

    /// <summary>The arguments with <paramref name="first"/> put before the positionals (a filter's value, a method's target).</summary>
    public CallArguments Prepend(object? first) => new([first, .. Positional], Keywords);

    private static int IndexOf(IReadOnlyList<string> names, string name)
    {
        for (var i = 0; i < names.Count; i++)
        {
            if (names[i] == name)
            {
                return i;
            }
        }

        return -1;
    }
}
