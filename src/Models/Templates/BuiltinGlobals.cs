namespace DistributedInference.Models.Templates;

/// <summary>
/// The functions every template sees: jinja2's <c>range</c> (at most 100,000 items, as the sandbox's
/// <c>MAX_RANGE</c>), <c>dict</c>, <c>namespace</c>, <c>joiner</c>, and transformers' <c>raise_exception(message)</c>
/// (fails the render with exactly that message) and <c>strftime_now(format)</c> (the render's clock, formatted as C's
/// strftime in the C locale).
/// </summary>
internal static class BuiltinGlobals
{
    private const long MaxRange = 100_000;

    public static void AddTo(Frame frame)
    {
        frame.Set("range", new BuiltinFunction("range", (_, a) => Range(a)));
        frame.Set("dict", new BuiltinFunction("dict", (_, a) => Dict(a, "dict")));
        frame.Set("namespace", new BuiltinFunction("namespace", (_, a) =>
        {
            var ns = new TemplateNamespace();
            foreach (var (key, value) in Dict(a, "namespace").Items)
            {
                ns.Attributes.Set(key, value);
            }

            return ns;
        }));
        frame.Set("joiner", new BuiltinFunction("joiner", (_, a) =>
        {
            var separator = PyText.Str(a.Bind("joiner", ["sep"])[0] is var s && s == CallArguments.Missing ? ", " : s);
            var used = false;
            return new BuiltinFunction("joiner", (_, _) =>
            {
                var result = used ? separator : string.Empty;
                used = true;
                return result;
            });
        }));
        frame.Set("raise_exception", new BuiltinFunction("raise_exception", (_, a) =>
            throw new TemplateError(TemplateException.RaisedType, PyText.Str(a.Bind("raise_exception", ["message"], 1)[0]))));
        frame.Set("strftime_now", new BuiltinFunction("strftime_now", (r, a) =>
            Strftime.Format(r.Options.Now(), PyText.Str(a.Bind("strftime_now", ["format"], 1)[0]))));
    }

    private static object? Range(CallArguments arguments)
    {
        if (arguments.Keywords.Count > 0)
        {
            throw TemplateError.Type("range() takes no keyword arguments");
        }

        var values = arguments.Positional.Select(PyOps.ToIndex).ToList();
        var (start, stop, step) = values.Count switch
        {
            1 => (0L, values[0], 1L),
            2 => (values[0], values[1], 1L),
            3 => (values[0], values[1], values[2]),
            _ => throw TemplateError.Type($"range expected at most 3 arguments, got {values.Count}"),
        };
        if (step == 0)
        {
            throw TemplateError.Value("range() arg 3 must not be zero");
        }

        var count = step > 0 ? (stop > start ? ((stop - start - 1) / step) + 1 : 0) : (start > stop ? ((start - stop - 1) / -step) + 1 : 0);
        if (count > MaxRange)
        {
            throw new TemplateError("OverflowError", $"Range too big. The sandbox blocks ranges larger than MAX_RANGE ({MaxRange}).");
        }

        var items = new List<object?>((int)count);
        for (var i = 0L; i < count; i++)
        {
            items.Add(start + (i * step));
        }

        return items;
    }

    private static PyDict Dict(CallArguments arguments, string name)
    {
        var dict = new PyDict();
        if (arguments.Positional.Count > 1)
        {
            throw TemplateError.Type($"{name} expected at most 1 argument, got {arguments.Positional.Count}");
        }

        if (arguments.Positional.Count == 1)
        {
            if (arguments.Positional[0] is PyDict source)
            {
                foreach (var (key, value) in source.Items)
                {
                    dict.Set(key, value);
                }
            }
            else
            {
                foreach (var pair in PyOps.Iterate(arguments.Positional[0]))
                {
                    var items = PyOps.Iterate(pair).ToList();
                    if (items.Count != 2)
                    {
                        throw TemplateError.Value($"dictionary update sequence element has length {items.Count}; 2 is required");
                    }

                    dict.Set(items[0], items[1]);
                }
            }
        }

        foreach (var (key, value) in arguments.Keywords)
        {
            dict.Set(key, value);
        }

        return dict;
    }
}
