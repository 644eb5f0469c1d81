namespace DistributedInference.Models.Templates;

/// <summary>
/// jinja2's tests (<c>jinja2/tests.py</c>: <c>x is defined</c>, <c>is none</c>, <c>is string</c>, <c>is mapping</c>,
/// <c>is iterable</c>, <c>is equalto y</c>, ...), also what <c>select</c>, <c>reject</c>, <c>selectattr</c> and
/// <c>rejectattr</c> apply by name. <c>is number</c> is true for bools, as in Python; <c>is integer</c> is not.
/// </summary>
internal static class BuiltinTests
{
    private static readonly Dictionary<string, Func<TemplateRenderer, object?, CallArguments, bool>> Tests = new(StringComparer.Ordinal)
    {
        ["odd"] = (_, v, a) => Integer("odd", v, a) % 2 != 0,
        ["even"] = (_, v, a) => Integer("even", v, a) % 2 == 0,
        ["divisibleby"] = (_, v, a) => PyOps.Equal(PyOps.Modulo(v, a.Bind("divisibleby", ["num"], 1)[0]), 0L),
        ["defined"] = (_, v, a) => NoArguments("defined", a, v is not Undefined),
        ["undefined"] = (_, v, a) => NoArguments("undefined", a, v is Undefined),
        ["filter"] = (_, v, a) => NoArguments("filter", a, v is string s && BuiltinFilters.Exists(s)),
        ["test"] = (_, v, a) => NoArguments("test", a, v is string s && Exists(s)),
        ["none"] = (_, v, a) => NoArguments("none", a, v is null),
        ["boolean"] = (_, v, a) => NoArguments("boolean", a, v is bool),
        ["false"] = (_, v, a) => NoArguments("false", a, v is false),
        ["true"] = (_, v, a) => NoArguments("true", a, v is true),
        ["integer"] = (_, v, a) => NoArguments("integer", a, v is long),
        ["float"] = (_, v, a) => NoArguments("float", a, v is double),
        ["lower"] = (_, v, a) => NoArguments("lower", a, PyMethods.Call(null!, PyText.Str(v), "islower", CallArguments.None) is true),
        ["upper"] = (_, v, a) => NoArguments("upper", a, PyMethods.Call(null!, PyText.Str(v), "isupper", CallArguments.None) is true),
        ["string"] = (_, v, a) => NoArguments("string", a, v is string),
        ["mapping"] = (_, v, a) => NoArguments("mapping", a, v is PyDict),
        ["number"] = (_, v, a) => NoArguments("number", a, v is bool or long or double),
        ["sequence"] = (_, v, a) => NoArguments("sequence", a, v is string or List<object?> or PyTuple or PyDict or Undefined),
        ["iterable"] = (_, v, a) => NoArguments("iterable", a, PyOps.IsIterable(v)),
        ["callable"] = (_, v, a) => NoArguments("callable", a, v is ITemplateCallable),
        ["sameas"] = (_, v, a) => Same(v, a.Bind("sameas", ["other"], 1)[0]),
        ["escaped"] = (_, v, a) => NoArguments("escaped", a, false),
        ["in"] = (_, v, a) => PyOps.Contains(a.Bind("in", ["seq"], 1)[0], v),
        ["=="] = Equal,
        ["eq"] = Equal,
        ["equalto"] = Equal,
        ["!="] = (r, v, a) => !Equal(r, v, a),
        ["ne"] = (r, v, a) => !Equal(r, v, a),
        [">"] = (_, v, a) => Order(v, a, ">") > 0,
        ["gt"] = (_, v, a) => Order(v, a, ">") > 0,
        ["greaterthan"] = (_, v, a) => Order(v, a, ">") > 0,
        [">="] = (_, v, a) => Order(v, a, ">=") >= 0,
        ["ge"] = (_, v, a) => Order(v, a, ">=") >= 0,
        ["<"] = (_, v, a) => Order(v, a, "<") < 0,
        ["lt"] = (_, v, a) => Order(v, a, "<") < 0,
        ["lessthan"] = (_, v, a) => Order(v, a, "<") < 0,
        ["<="] = (_, v, a) => Order(v, a, "<=") <= 0,
        ["le"] = (_, v, a) => Order(v, a, "<=") <= 0,
    };

    public static bool Exists(string name) => Tests.ContainsKey(name);

    /// <exception cref="TemplateError">An unknown test (reached through <c>select('name')</c>), or the test failed.</exception>
    public static bool Apply(TemplateRenderer renderer, string name, object? value, CallArguments arguments)
    {
        if (!Tests.TryGetValue(name, out var test))
        {
            throw new TemplateError("TemplateRuntimeError", $"No test named {PyText.Repr(name)}.");
        }

        return test(renderer, value, arguments);
    }

    private static bool NoArguments(string name, CallArguments arguments, bool result)
    {
        arguments.Bind(name, []);
        return result;
    }

    private static long Integer(string name, object? value, CallArguments arguments)
    {
        arguments.Bind(name, []);
        return value is double d ? (long)d : PyOps.ToIndex(value);
    }

    private static bool Equal(TemplateRenderer renderer, object? value, CallArguments arguments) =>
        PyOps.Equal(value, arguments.Bind("eq", ["other"], 1)[0]);

    private static int Order(object? value, CallArguments arguments, string op) =>
        PyOps.Compare(value, arguments.Bind(op, ["other"], 1)[0], op);

    private static bool Same(object? a, object? b) => (a, b) switch
    {
        (null, null) => true,
        (bool x, bool y) => x == y,
        (long x, long y) => x == y && x is >= -5 and <= 256,
        (string x, string y) => ReferenceEquals(x, y),
        _ => ReferenceEquals(a, b),
    };
}
