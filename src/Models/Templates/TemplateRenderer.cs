using System.Text;

namespace DistributedInference.Models.Templates;

/// <summary>
/// Runs a parsed template (jinja2's compiled code, interpreted): statements write to the output, expressions evaluate to
/// Python-like values (<see cref="PyOps"/>), attribute and item access follow jinja2's
/// <c>ImmutableSandboxedEnvironment</c> (<c>obj.x</c> tries the attribute then the key, <c>obj['x']</c> the key then the
/// attribute; methods that change a list or dict, and names starting with <c>_</c>, are refused), within the bounds of
/// <see cref="TemplateRenderOptions"/>. Errors carry the template's name and the line being run.
/// </summary>
internal sealed class TemplateRenderer
{
    private readonly string _templateName;
    private long _iterations;
    private int _callDepth;
    private int _line;

    private TemplateRenderer(string templateName, TemplateRenderOptions options)
    {
        _templateName = templateName;
        Options = options;
    }

    public TemplateRenderOptions Options { get; }

    private enum Flow
    {
        Normal,
        Break,
        Continue,
    }

    /// <exception cref="TemplateException">The template raised (<c>raise_exception</c>) or failed.</exception>
    public static string Render(IReadOnlyList<Stmt> body, string templateName, IEnumerable<KeyValuePair<string, object?>> variables, TemplateRenderOptions options)
    {
        var renderer = new TemplateRenderer(templateName, options);
        var globals = new Frame(null);
        BuiltinGlobals.AddTo(globals);
        foreach (var (name, value) in variables)
        {
            globals.Set(name, value);
        }

        var output = new StringBuilder();
        try
        {
            renderer.Exec(body, new Frame(globals), output);
        }
        catch (TemplateError e)
        {
            var raised = e.ErrorType == TemplateException.RaisedType;
            throw new TemplateException(templateName, e.ErrorType, e.Message, raised ? null : renderer._line);
        }
        catch (InsufficientExecutionStackException)
        {
            throw new TemplateException(templateName, "RecursionError", "maximum recursion depth exceeded", renderer._line);
        }

        return output.ToString();
    }

    private void Write(StringBuilder output, string text)
    {
        output.Append(text);
        if (output.Length > Options.MaxOutputLength)
        {
            throw TemplateError.Security($"the rendered text is longer than the sandbox allows ({Options.MaxOutputLength} characters)");
        }
    }

    private Flow Exec(IReadOnlyList<Stmt> body, Frame frame, StringBuilder output)
    {
        foreach (var statement in body)
        {
            _line = statement.Line;
            var flow = Exec(statement, frame, output);
            if (flow != Flow.Normal)
            {
                return flow;
            }
        }

        return Flow.Normal;
    }

    private Flow Exec(Stmt statement, Frame frame, StringBuilder output)
    {
        switch (statement)
        {
            case OutputStmt o:
                for (var i = 0; i < o.Items.Count; i++)
                {
                    if (o.IsData[i])
                    {
                        Write(output, (string)((ConstExpr)o.Items[i]).Value!);
                    }
                    else
                    {
                        Write(output, PyText.Str(Evaluate(o.Items[i], frame)));
                    }
                }

                return Flow.Normal;
            case IfStmt s:
                foreach (var (test, branch) in s.Branches)
                {
                    if (PyOps.Truthy(Evaluate(test, frame)))
                    {
                        return Exec(branch, frame, output);
                    }
                }

                return Exec(s.Else, frame, output);
            case ForStmt s:
                return ExecFor(s, Evaluate(s.Iterable, frame), frame, output, 0);
            case SetStmt s:
                Assign(s.Target, Evaluate(s.Value, frame), frame);
                return Flow.Normal;
            case SetBlockStmt s:
                {
                    var captured = new StringBuilder();
                    Exec(s.Body, new Frame(frame), captured);
                    object? value = captured.ToString();
                    if (s.Filter is not null)
                    {
                        value = ApplyFilterChain(s.Filter, value, frame);
                    }

                    Assign(s.Target, value, frame);
                    return Flow.Normal;
                }

            case MacroStmt s:
                frame.Set(s.Name, new Macro(s.Name, s.Parameters, s.Defaults, s.Body, frame));
                return Flow.Normal;
            case CallBlockStmt s:
                {
                    var caller = new Macro("caller", s.Parameters, s.Defaults, s.Body, frame);
                    var callee = Evaluate(s.Call.Callee, frame);
                    var arguments = EvaluateArguments(s.Call.Arguments, frame);
                    arguments = new CallArguments(arguments.Positional, [.. arguments.Keywords, new("caller", caller)]);
                    Write(output, PyText.Str(Call(callee, arguments)));
                    return Flow.Normal;
                }

            case FilterBlockStmt s:
                {
                    var captured = new StringBuilder();
                    Exec(s.Body, new Frame(frame), captured);
                    Write(output, PyText.Str(ApplyFilterChain(s.Filter, captured.ToString(), frame)));
                    return Flow.Normal;
                }

            case WithStmt s:
                {
                    var values = s.Assignments.Select(a => Evaluate(a.Value, frame)).ToList();
                    var inner = new Frame(frame);
                    for (var i = 0; i < values.Count; i++)
                    {
                        Assign(s.Assignments[i].Target, values[i], inner);
                    }

                    return Exec(s.Body, inner, output);
                }

            case ScopeStmt s:
                return Exec(s.Body, s.NewScope ? new Frame(frame) : frame, output);
            case BreakStmt:
                return Flow.Break;
            case ContinueStmt:
                return Flow.Continue;
            case ExprStmt s:
                Evaluate(s.Value, frame);
                return Flow.Normal;
            case LoaderStmt s:
                throw TemplateError.Type($"no loader for this environment specified ({s.Tag} cannot load another template in the sandbox)");
            default:
                throw new InvalidOperationException($"unknown statement {statement.GetType().Name}");
        }
    }

    private Flow ExecFor(ForStmt loop, object? iterable, Frame frame, StringBuilder output, int depth0)
    {
        var items = PyOps.Iterate(iterable).ToList();
        if (loop.Filter is not null)
        {
            var filterFrame = new Frame(frame);
            items = items.Where(item =>
            {
                Assign(loop.Target, item, filterFrame);
                return PyOps.Truthy(Evaluate(loop.Filter, filterFrame));
            }).ToList();
        }

        Func<object?, int, string>? recurse = loop.Recursive
            ? (children, depth) =>
            {
                var captured = new StringBuilder();
                ExecFor(loop, children, frame, captured, depth);
                return captured.ToString();
            }
        : null;
        var context = new LoopContext(items, depth0, recurse);
        for (var i = 0; i < items.Count; i++)
        {
            if (++_iterations > Options.MaxLoopIterations)
            {
                throw TemplateError.Security($"the template ran more loop iterations than the sandbox allows ({Options.MaxLoopIterations})");
            }

            context.Index0 = i;
            var iteration = new Frame(frame);
            Assign(loop.Target, items[i], iteration);
            iteration.Set("loop", context);
            if (Exec(loop.Body, iteration, output) == Flow.Break)
            {
                break;
            }
        }

        if (items.Count == 0)
        {
            Exec(loop.Else, new Frame(frame), output);
        }

        return Flow.Normal;
    }

    private void Assign(Expr target, object? value, Frame frame)
    {
        switch (target)
        {
            case NameExpr name:
                frame.Set(name.Name, value);
                break;
            case TupleExpr tuple:
                var items = PyOps.Iterate(value).ToList();
                if (items.Count < tuple.Items.Count)
                {
                    throw TemplateError.Value($"not enough values to unpack (expected {tuple.Items.Count}, got {items.Count})");
                }

                if (items.Count > tuple.Items.Count)
                {
                    throw TemplateError.Value($"too many values to unpack (expected {tuple.Items.Count})");
                }

                for (var i = 0; i < items.Count; i++)
                {
                    Assign(tuple.Items[i], items[i], frame);
                }

                break;
            case NamespaceRefExpr reference:
                if (frame.Resolve(reference.Name) is not TemplateNamespace ns)
                {
                    throw TemplateError.Runtime("cannot assign attribute on non-namespace object");
                }

                ns.Attributes.Set(reference.Attribute, value);
                break;
            default:
                throw new InvalidOperationException($"cannot assign to {target.GetType().Name}");
        }
    }

    /// <summary>Renders a macro's body (called by <see cref="Macro"/>) within the call-depth bound.</summary>
    public string RenderMacroBody(IReadOnlyList<Stmt> body, Frame frame)
    {
        if (++_callDepth > Options.MaxCallDepth)
        {
            throw new TemplateError("RecursionError", $"maximum recursion depth exceeded ({Options.MaxCallDepth} macro calls)");
        }

        var line = _line;
        try
        {
            var output = new StringBuilder();
            Exec(body, frame, output);
            return output.ToString();
        }
        finally
        {
            _callDepth--;
            _line = line;
        }
    }

    /// <summary>Evaluates an expression in a scope (used by macros for their defaults).</summary>
    public object? Evaluate(Expr expression, Frame frame)
    {
        System.Runtime.CompilerServices.RuntimeHelpers.EnsureSufficientExecutionStack();
        _line = expression.Line;
        switch (expression)
        {
            case ConstExpr c:
                return c.Value;
            case NameExpr n:
                return frame.Resolve(n.Name);
            case GetAttrExpr g:
                return GetAttribute(Evaluate(g.Target, frame), g.Attribute);
            case GetItemExpr g:
                return GetItem(Evaluate(g.Target, frame), Evaluate(g.Key, frame));
            case SliceExpr s:
                return new PySlice(s.Start is null ? null : Evaluate(s.Start, frame), s.Stop is null ? null : Evaluate(s.Stop, frame), s.Step is null ? null : Evaluate(s.Step, frame));
            case CallExpr c:
                {
                    var callee = Evaluate(c.Callee, frame);
                    return Call(callee, EvaluateArguments(c.Arguments, frame));
                }

            case FilterExpr f:
                return ApplyFilterChain(f, null, frame);
            case TestExpr t:
                return BuiltinTests.Apply(this, t.Name, Evaluate(t.Target, frame), EvaluateArguments(t.Arguments, frame));
            case NotExpr n:
                return !PyOps.Truthy(Evaluate(n.Operand, frame));
            case UnaryExpr u:
                var operand = Evaluate(u.Operand, frame);
                return u.Operator == "-" ? PyOps.Negate(operand) : PyOps.Plus(operand);
            case BinaryExpr b:
                return Binary(b.Operator, Evaluate(b.Left, frame), Evaluate(b.Right, frame));
            case AndExpr a:
                {
                    var left = Evaluate(a.Left, frame);
                    return PyOps.Truthy(left) ? Evaluate(a.Right, frame) : left;
                }

            case OrExpr o:
                {
                    var left = Evaluate(o.Left, frame);
                    return PyOps.Truthy(left) ? left : Evaluate(o.Right, frame);
                }

            case CompareExpr c:
                return Compare(c, frame);
            case CondExpr c:
                if (PyOps.Truthy(Evaluate(c.Test, frame)))
                {
                    return Evaluate(c.WhenTrue, frame);
                }

                return c.WhenFalse is null
                    ? Undefined.WithHint($"the inline if-expression on line {c.Line} evaluated to false and no else section was defined.")
                    : Evaluate(c.WhenFalse, frame);
            case ListExpr l:
                return l.Items.Select(item => Evaluate(item, frame)).ToList();
            case TupleExpr t:
                return new PyTuple(t.Items.Select(item => Evaluate(item, frame)).ToList());
            case DictExpr d:
                {
                    var dict = new PyDict();
                    foreach (var (key, value) in d.Items)
                    {
                        dict.Set(Evaluate(key, frame), Evaluate(value, frame));
                    }

                    return dict;
                }

            case NamespaceRefExpr r:
                return GetAttribute(frame.Resolve(r.Name), r.Attribute);
            default:
                throw new InvalidOperationException($"unknown expression {expression.GetType().Name}");
        }
    }

    private static object? Binary(string op, object? left, object? right) => op switch
    {
        "+" => PyOps.Add(left, right),
        "-" => PyOps.Subtract(left, right),
        "*" => PyOps.Multiply(left, right),
        "/" => PyOps.Divide(left, right),
        "//" => PyOps.FloorDivide(left, right),
        "%" => PyOps.Modulo(left, right),
        "**" => PyOps.Power(left, right),
        "~" => PyText.Str(left) + PyText.Str(right),
        _ => throw new InvalidOperationException($"unknown operator {op}"),
    };

    private bool Compare(CompareExpr compare, Frame frame)
    {
        var left = Evaluate(compare.First, frame);
        foreach (var (op, operand) in compare.Rest)
        {
            var right = Evaluate(operand, frame);
            var result = op switch
            {
                "==" => PyOps.Equal(left, right),
                "!=" => !PyOps.Equal(left, right),
                "in" => PyOps.Contains(right, left),
                "notin" => !PyOps.Contains(right, left),
                "<" => PyOps.Compare(left, right, op) < 0,
                "<=" => PyOps.Compare(left, right, op) <= 0,
                ">" => PyOps.Compare(left, right, op) > 0,
                ">=" => PyOps.Compare(left, right, op) >= 0,
                _ => throw new InvalidOperationException($"unknown comparison {op}"),
            };
            if (!result)
            {
                return false;
            }

            left = right;
        }

        return true;
    }

    private object? ApplyFilterChain(FilterExpr filter, object? value, Frame frame)
    {
        var input = filter.Target is null ? value : Evaluate(filter.Target, frame);
        return BuiltinFilters.Apply(this, filter.Name, input, EvaluateArguments(filter.Arguments, frame));
    }

    private CallArguments EvaluateArguments(Arguments arguments, Frame frame)
    {
        if (arguments.Positional.Count == 0 && arguments.Keywords.Count == 0 && arguments.DynamicPositional is null && arguments.DynamicKeywords is null)
        {
            return CallArguments.None;
        }

        var positional = arguments.Positional.Select(a => Evaluate(a, frame)).ToList();
        var keywords = arguments.Keywords.Select(k => new KeyValuePair<string, object?>(k.Key, Evaluate(k.Value, frame))).ToList();
        if (arguments.DynamicPositional is not null)
        {
            positional.AddRange(PyOps.Iterate(Evaluate(arguments.DynamicPositional, frame)));
        }

        if (arguments.DynamicKeywords is not null)
        {
            if (Evaluate(arguments.DynamicKeywords, frame) is not PyDict extra)
            {
                throw TemplateError.Type("argument after ** must be a mapping");
            }

            foreach (var (key, value) in extra.Items)
            {
                keywords.Add(new(key as string ?? throw TemplateError.Type("keywords must be strings"), value));
            }
        }

        return new CallArguments(positional, keywords);
    }

    /// <summary>Calls a template value: a function, method, macro or recursive loop.</summary>
    public object? Call(object? callee, CallArguments arguments) => callee switch
    {
        Undefined u => throw u.Fail(),
        ITemplateCallable callable => callable.Call(this, arguments),
        _ => throw TemplateError.Type($"{PyText.Repr(PyOps.TypeName(callee))} object is not callable"),
    };

    /// <summary>jinja2's sandboxed <c>getattr(obj, name)</c>: the attribute, else the item, else undefined.</summary>
    public static object? GetAttribute(object? obj, string name)
    {
        if (obj is Undefined u)
        {
            throw u.Fail();
        }

        var attribute = PyMethods.GetAttribute(obj, name);
        if (attribute != CallArguments.Missing)
        {
            return PyMethods.IsSafe(obj, name) ? attribute : Undefined.Unsafe(obj, name);
        }

        var item = PyOps.SubscriptOrMissing(obj, name);
        return item != CallArguments.Missing ? item : Undefined.Member(obj, name);
    }

    /// <summary>jinja2's sandboxed <c>getitem(obj, key)</c>: the item, else (for a string key) the attribute, else undefined.</summary>
    public static object? GetItem(object? obj, object? key)
    {
        if (obj is Undefined u)
        {
            throw u.Fail();
        }

        var item = PyOps.SubscriptOrMissing(obj, key);
        if (item != CallArguments.Missing)
        {
            return item;
        }

        if (key is string name)
        {
            var attribute = PyMethods.GetAttribute(obj, name);
            if (attribute != CallArguments.Missing)
            {
                return PyMethods.IsSafe(obj, name) ? attribute : Undefined.Unsafe(obj, name);
            }
        }

        return Undefined.Member(obj, key);
    }
}
