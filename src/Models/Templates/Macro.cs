namespace DistributedInference.Models.Templates;

/// <summary>
/// A <c>{% macro %}</c> (or a call block's <c>caller</c>): called with Python's argument rules, it renders its body in
/// a scope of its own above the scope it was defined in and returns the text. Extra positionals go to
/// <c>varargs</c>, unknown keywords to <c>kwargs</c>; a parameter not given and without a default is undefined.
/// </summary>
internal sealed class Macro(string name, IReadOnlyList<string> parameters, IReadOnlyList<Expr> defaults, IReadOnlyList<Stmt> body, Frame closure) : ITemplateCallable
{
    public string Name { get; } = name;

    public object? Call(TemplateRenderer renderer, CallArguments arguments)
    {
        var frame = new Frame(closure);
        var given = new bool[parameters.Count];
        var varargs = new List<object?>();
        for (var i = 0; i < arguments.Positional.Count; i++)
        {
            if (i < parameters.Count)
            {
                frame.Set(parameters[i], arguments.Positional[i]);
                given[i] = true;
            }
            else
            {
                varargs.Add(arguments.Positional[i]);
            }
        }

        var kwargs = new PyDict();
        object? caller = null;
        foreach (var (key, value) in arguments.Keywords)
        {
            var index = IndexOf(key);
            if (index >= 0)
            {
                if (given[index])
                {
                    throw TemplateError.Type($"macro {PyText.Repr(Name)} got multiple values for argument {PyText.Repr(key)}");
                }

                frame.Set(key, value);
                given[index] = true;
            }
            else if (key == "caller")
            {
                caller = value;
            }
            else
            {
                kwargs.Set(key, value);
            }
        }

        var firstDefault = parameters.Count - defaults.Count;
        for (var i = 0; i < parameters.Count; i++)
        {
            if (!given[i])
            {
                frame.Set(parameters[i], i >= firstDefault
                    ? renderer.Evaluate(defaults[i - firstDefault], frame)
                    : Undefined.WithHint($"parameter {PyText.Repr(parameters[i])} was not provided"));
            }
        }

        frame.Set("varargs", new PyTuple(varargs));
        frame.Set("kwargs", kwargs);
        if (caller is not null)
        {
            frame.Set("caller", caller);
        }

        return renderer.RenderMacroBody(body, frame);
    }

    private int IndexOf(string parameter)
    {
        for (var i = 0; i < parameters.Count; i++)
        {
            if (parameters[i] == parameter)
            {
                return i;
            }
        }

        return -1;
    }
}
