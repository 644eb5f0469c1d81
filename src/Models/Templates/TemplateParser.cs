namespace DistributedInference.Models.Templates;

/// <summary>
/// jinja2 3.1's recursive-descent parser (<c>jinja2/parser.py</c>) over <see cref="TemplateLexer"/>'s tokens, with the
/// same precedence (filters and tests bind tighter than arithmetic: <c>'a' + x | trim</c> trims <c>x</c>; <c>not x is
/// defined</c> negates the test), the same statements (<c>if</c>, <c>for ... if ... recursive</c> with <c>else</c>,
/// <c>set</c> and set blocks, <c>macro</c>, <c>call</c>, <c>filter</c>, <c>with</c>, <c>block</c>, <c>raw</c>,
/// <c>print</c>, <c>autoescape</c>) plus the extensions transformers loads (<c>break</c>, <c>continue</c>,
/// <c>generation</c>), and jinja2's error messages. Unknown filters and tests are refused here, as jinja2's compiler does.
/// </summary>
internal sealed class TemplateParser
{
    private const int MaxDepth = 400;
    private static readonly HashSet<string> CompareOperators = ["==", "!=", ">", ">=", "<", "<="];
    private static readonly HashSet<string> ConstantNames = ["true", "false", "True", "False", "none", "None"];

    private readonly List<TemplateToken> _tokens;
    private readonly string _name;
    private readonly List<string> _tagStack = [];
    private readonly List<string[]> _endTokenStack = [];
    private int _index;
    private int _depth;
    private int _loopDepth;

    private TemplateParser(List<TemplateToken> tokens, string name)
    {
        _tokens = tokens;
        _name = name;
    }

    /// <exception cref="TemplateException">The template is not valid jinja2 (a <c>TemplateSyntaxError</c>), or names a
    /// filter or test that does not exist.</exception>
    public static IReadOnlyList<Stmt> Parse(string source, string name)
    {
        var parser = new TemplateParser(TemplateLexer.Tokenize(source, name), name);
        var body = parser.Subparse(null);
        if (parser.Current.Kind != TokenKind.Eof)
        {
            throw parser.Fail($"unexpected {PyText.Repr(parser.Current.Describe())}");
        }

        return body;
    }

    private TemplateToken Current => _tokens[_index];

    private TemplateToken Look => _tokens[Math.Min(_index + 1, _tokens.Count - 1)];

    private TemplateToken Next()
    {
        var token = Current;
        if (token.Kind != TokenKind.Eof)
        {
            _index++;
        }

        return token;
    }

    private TemplateException Fail(string message, int? line = null) =>
        TemplateException.Syntax(_name, line ?? Current.Line, message);

    private bool SkipOperator(string op)
    {
        if (Current.IsOperator(op))
        {
            Next();
            return true;
        }

        return false;
    }

    private bool SkipName(string name)
    {
        if (Current.IsName(name))
        {
            Next();
            return true;
        }

        return false;
    }

    private TemplateToken Expect(TokenKind kind, string? text = null)
    {
        var matches = Current.Kind == kind && (text is null || Current.Text == text);
        if (matches)
        {
            return Next();
        }

        var expected = text ?? TemplateToken.Describe(kind);
        if (Current.Kind == TokenKind.Eof)
        {
            throw Fail($"unexpected end of template, expected {PyText.Repr(expected)}.");
        }

        throw Fail($"expected token {PyText.Repr(expected)}, got {PyText.Repr(Current.Describe())}");
    }

    private void Enter()
    {
        if (++_depth > MaxDepth)
        {
            throw Fail("the template nests deeper than the sandbox allows");
        }
    }

    private List<Stmt> Subparse(string[]? endTokens)
    {
        var body = new List<Stmt>();
        var items = new List<Expr>();
        var isData = new List<bool>();
        if (endTokens is not null)
        {
            _endTokenStack.Add(endTokens);
        }

        void Flush()
        {
            if (items.Count > 0)
            {
                body.Add(new OutputStmt(items[0].Line, [.. items], [.. isData]));
                items.Clear();
                isData.Clear();
            }
        }

        try
        {
            while (Current.Kind != TokenKind.Eof)
            {
                var token = Current;
                switch (token.Kind)
                {
                    case TokenKind.Data:
                        items.Add(new ConstExpr(token.Line, token.Text));
                        isData.Add(true);
                        Next();
                        break;
                    case TokenKind.VariableBegin:
                        Next();
                        items.Add(ParseTuple(withCondExpr: true));
                        isData.Add(false);
                        Expect(TokenKind.VariableEnd);
                        break;
                    case TokenKind.BlockBegin:
                        Flush();
                        Next();
                        if (endTokens is not null && Current.Kind == TokenKind.Name && endTokens.Contains(Current.Text))
                        {
                            return body;
                        }

                        body.AddRange(ParseStatement());
                        Expect(TokenKind.BlockEnd);
                        break;
                    default:
                        throw Fail($"unexpected {PyText.Repr(token.Describe())}");
                }
            }

            Flush();
        }
        finally
        {
            if (endTokens is not null)
            {
                _endTokenStack.RemoveAt(_endTokenStack.Count - 1);
            }
        }

        return body;
    }

    private List<Stmt> ParseStatements(string[] endTokens, bool dropNeedle = false)
    {
        SkipOperator(":");
        Expect(TokenKind.BlockEnd);
        var result = Subparse(endTokens);
        if (Current.Kind == TokenKind.Eof)
        {
            _endTokenStack.Add(endTokens);
            FailUnknownTag(null);
        }

        if (dropNeedle)
        {
            Next();
        }

        return result;
    }

    private void FailUnknownTag(string? name)
    {
        var expected = new HashSet<string>(_endTokenStack.SelectMany(t => t));
        var looking = _endTokenStack.Count > 0 ? string.Join(" or ", _endTokenStack[^1].Select(PyText.Repr)) : null;
        var message = new List<string> { name is null ? "Unexpected end of template." : $"Encountered unknown tag {PyText.Repr(name)}." };
        if (looking is not null)
        {
            message.Add(name is not null && expected.Contains(name)
                ? $"You probably made a nesting mistake. Jinja is expecting this tag, but currently looking for {looking}."
                : $"Jinja was looking for the following tags: {looking}.");
        }

        if (_tagStack.Count > 0)
        {
            message.Add($"The innermost block that needs to be closed is {PyText.Repr(_tagStack[^1])}.");
        }

        throw Fail(string.Join(' ', message));
    }

    private List<Stmt> ParseStatement()
    {
        var token = Current;
        if (token.Kind != TokenKind.Name)
        {
            throw Fail("tag name expected");
        }

        Enter();
        _tagStack.Add(token.Text);
        var pop = true;
        try
        {
            switch (token.Text)
            {
                case "for":
                    return [ParseFor()];
                case "if":
                    return [ParseIf()];
                case "set":
                    return [ParseSet()];
                case "macro":
                    return [ParseMacro()];
                case "call":
                    return [ParseCallBlock()];
                case "filter":
                    return [ParseFilterBlock()];
                case "with":
                    return [ParseWith()];
                case "print":
                    return [ParsePrint()];
                case "block":
                    return [ParseBlock()];
                case "autoescape":
                    Next();
                    ParseExpression();
                    return [new ScopeStmt(token.Line, ParseStatements(["endautoescape"], dropNeedle: true), NewScope: true)];
                case "generation":
                    // transformers' AssistantTracker: the body renders as it is (a call block: a scope of its own).
                    Next();
                    return [new ScopeStmt(token.Line, ParseStatements(["endgeneration"], dropNeedle: true), NewScope: true)];
                case "break" or "continue":
                    Next();
                    if (_loopDepth == 0)
                    {
                        throw Fail($"'{token.Text}' outside loop", token.Line);
                    }

                    return [token.Text == "break" ? new BreakStmt(token.Line) : new ContinueStmt(token.Line)];
                case "include" or "import" or "from" or "extends":
                    Next();
                    while (Current.Kind is not (TokenKind.BlockEnd or TokenKind.Eof))
                    {
                        Next();
                    }

                    return [new LoaderStmt(token.Line, token.Text)];
                default:
                    _tagStack.RemoveAt(_tagStack.Count - 1);
                    pop = false;
                    FailUnknownTag(token.Text);
                    return [];
            }
        }
        finally
        {
            if (pop)
            {
                _tagStack.RemoveAt(_tagStack.Count - 1);
            }

            _depth--;
        }
    }

    private ForStmt ParseFor()
    {
        var line = Expect(TokenKind.Name, "for").Line;
        var target = ParseAssignTarget(extraEndRules: ["in"]);
        Expect(TokenKind.Name, "in");
        var iterable = ParseTuple(withCondExpr: false, extraEndRules: ["recursive"]);
        Expr? filter = null;
        if (SkipName("if"))
        {
            filter = ParseExpression();
        }

        var recursive = SkipName("recursive");
        _loopDepth++;
        List<Stmt> body;
        try
        {
            body = ParseStatements(["endfor", "else"]);
        }
        finally
        {
            _loopDepth--;
        }

        List<Stmt> elseBody = Next().Text == "endfor" ? [] : ParseStatements(["endfor"], dropNeedle: true);
        return new ForStmt(line, target, iterable, body, elseBody, filter, recursive);
    }

    private IfStmt ParseIf()
    {
        var line = Expect(TokenKind.Name, "if").Line;
        var branches = new List<(Expr, IReadOnlyList<Stmt>)>();
        while (true)
        {
            var test = ParseTuple(withCondExpr: false);
            var body = ParseStatements(["elif", "else", "endif"]);
            branches.Add((test, body));
            var token = Next();
            if (token.Text == "elif")
            {
                continue;
            }

            IReadOnlyList<Stmt> elseBody = token.Text == "else" ? ParseStatements(["endif"], dropNeedle: true) : [];
            return new IfStmt(line, branches, elseBody);
        }
    }

    private Stmt ParseSet()
    {
        var line = Next().Line;
        var target = ParseAssignTarget(withNamespace: true);
        if (SkipOperator("="))
        {
            return new SetStmt(line, target, ParseTuple(withCondExpr: true));
        }

        var filter = Current.IsOperator("|") ? (FilterExpr)ParseFilter(null)! : null;
        var body = ParseStatements(["endset"], dropNeedle: true);
        return new SetBlockStmt(line, target, filter, body);
    }

    private MacroStmt ParseMacro()
    {
        var line = Next().Line;
        var name = Expect(TokenKind.Name).Text;
        var (parameters, defaults) = ParseSignature();
        var outerLoops = _loopDepth;
        _loopDepth = 0;
        try
        {
            return new MacroStmt(line, name, parameters, defaults, ParseStatements(["endmacro"], dropNeedle: true));
        }
        finally
        {
            _loopDepth = outerLoops;
        }
    }

    private (List<string> Parameters, List<Expr> Defaults) ParseSignature()
    {
        var parameters = new List<string>();
        var defaults = new List<Expr>();
        Expect(TokenKind.Operator, "(");
        while (!Current.IsOperator(")"))
        {
            if (parameters.Count > 0)
            {
                Expect(TokenKind.Operator, ",");
            }

            var name = Expect(TokenKind.Name).Text;
            if (SkipOperator("="))
            {
                defaults.Add(ParseExpression());
            }
            else if (defaults.Count > 0)
            {
                throw Fail("non-default argument follows default argument");
            }

            parameters.Add(name);
        }

        Expect(TokenKind.Operator, ")");
        return (parameters, defaults);
    }

    private CallBlockStmt ParseCallBlock()
    {
        var line = Next().Line;
        var (parameters, defaults) = Current.IsOperator("(") ? ParseSignature() : ([], []);
        if (ParseExpression() is not CallExpr call)
        {
            throw Fail("expected call", line);
        }

        var outerLoops = _loopDepth;
        _loopDepth = 0;
        try
        {
            return new CallBlockStmt(line, call, parameters, defaults, ParseStatements(["endcall"], dropNeedle: true));
        }
        finally
        {
            _loopDepth = outerLoops;
        }
    }

    private FilterBlockStmt ParseFilterBlock()
    {
        var line = Next().Line;
        var filter = (FilterExpr)ParseFilter(null, startInline: true)!;
        return new FilterBlockStmt(line, filter, ParseStatements(["endfilter"], dropNeedle: true));
    }

    private WithStmt ParseWith()
    {
        var line = Next().Line;
        var assignments = new List<(Expr, Expr)>();
        while (Current.Kind != TokenKind.BlockEnd)
        {
            if (assignments.Count > 0)
            {
                Expect(TokenKind.Operator, ",");
            }

            var target = ParseAssignTarget();
            Expect(TokenKind.Operator, "=");
            assignments.Add((target, ParseExpression()));
        }

        return new WithStmt(line, assignments, ParseStatements(["endwith"], dropNeedle: true));
    }

    private OutputStmt ParsePrint()
    {
        var line = Next().Line;
        var items = new List<Expr>();
        while (Current.Kind != TokenKind.BlockEnd)
        {
            if (items.Count > 0)
            {
                Expect(TokenKind.Operator, ",");
            }

            items.Add(ParseExpression());
        }

        return new OutputStmt(line, items, items.Select(_ => false).ToList());
    }

    private ScopeStmt ParseBlock()
    {
        var line = Next().Line;
        var name = Expect(TokenKind.Name).Text;
        SkipName("scoped");
        SkipName("required");
        if (Current.IsOperator("-"))
        {
            throw Fail("Block names in Jinja have to be valid Python identifiers and may not contain hyphens, use an underscore instead.");
        }

        var body = ParseStatements(["endblock"], dropNeedle: true);
        SkipName(name);
        return new ScopeStmt(line, body, NewScope: true);
    }

    private Expr ParseAssignTarget(bool withTuple = true, string[]? extraEndRules = null, bool withNamespace = false)
    {
        Expr target;
        if (withNamespace && Look.IsOperator("."))
        {
            var name = Expect(TokenKind.Name);
            Next();
            var attribute = Expect(TokenKind.Name);
            target = new NamespaceRefExpr(name.Line, name.Text, attribute.Text);
        }
        else
        {
            target = withTuple ? ParseTuple(simplified: true, extraEndRules: extraEndRules) : ParsePrimary();
        }

        if (!CanAssign(target))
        {
            throw Fail($"can't assign to {PyText.Repr(NodeKind(target))}", target.Line);
        }

        return target;
    }

    private static bool CanAssign(Expr target) => target switch
    {
        NameExpr name => !ConstantNames.Contains(name.Name),
        TupleExpr tuple => tuple.Items.All(CanAssign),
        NamespaceRefExpr => true,
        _ => false,
    };

    private static string NodeKind(Expr e) => e switch
    {
        ConstExpr => "const",
        TupleExpr => "tuple",
        ListExpr => "list",
        DictExpr => "dict",
        CallExpr => "call",
        GetAttrExpr => "getattr",
        GetItemExpr => "getitem",
        _ => e.GetType().Name.Replace("Expr", string.Empty, StringComparison.Ordinal).ToLowerInvariant(),
    };

    private Expr ParseExpression(bool withCondExpr = true) => withCondExpr ? ParseCondExpr() : ParseOr();

    private Expr ParseCondExpr()
    {
        Enter();
        try
        {
            var line = Current.Line;
            var expr = ParseOr();
            while (SkipName("if"))
            {
                var test = ParseOr();
                var otherwise = SkipName("else") ? ParseCondExpr() : null;
                expr = new CondExpr(line, test, expr, otherwise);
                line = Current.Line;
            }

            return expr;
        }
        finally
        {
            _depth--;
        }
    }

    private Expr ParseOr()
    {
        var line = Current.Line;
        var left = ParseAnd();
        while (SkipName("or"))
        {
            left = new OrExpr(line, left, ParseAnd());
            line = Current.Line;
        }

        return left;
    }

    private Expr ParseAnd()
    {
        var line = Current.Line;
        var left = ParseNot();
        while (SkipName("and"))
        {
            left = new AndExpr(line, left, ParseNot());
            line = Current.Line;
        }

        return left;
    }

    private Expr ParseNot()
    {
        if (Current.IsName("not"))
        {
            var line = Next().Line;
            Enter();
            try
            {
                return new NotExpr(line, ParseNot());
            }
            finally
            {
                _depth--;
            }
        }

        return ParseCompare();
    }

    private Expr ParseCompare()
    {
        var line = Current.Line;
        var first = ParseMath1();
        var rest = new List<(string, Expr)>();
        while (true)
        {
            if (Current.Kind == TokenKind.Operator && CompareOperators.Contains(Current.Text))
            {
                var op = Next().Text;
                rest.Add((op, ParseMath1()));
            }
            else if (SkipName("in"))
            {
                rest.Add(("in", ParseMath1()));
            }
            else if (Current.IsName("not") && Look.IsName("in"))
            {
                Next();
                Next();
                rest.Add(("notin", ParseMath1()));
            }
            else
            {
                break;
            }
        }

        return rest.Count == 0 ? first : new CompareExpr(line, first, rest);
    }

    private Expr ParseMath1()
    {
        var line = Current.Line;
        var left = ParseConcat();
        while (Current.IsOperator("+") || Current.IsOperator("-"))
        {
            var op = Next().Text;
            left = new BinaryExpr(line, op, left, ParseConcat());
            line = Current.Line;
        }

        return left;
    }

    private Expr ParseConcat()
    {
        var line = Current.Line;
        var left = ParseMath2();
        while (SkipOperator("~"))
        {
            left = new BinaryExpr(line, "~", left, ParseMath2());
        }

        return left;
    }

    private Expr ParseMath2()
    {
        var line = Current.Line;
        var left = ParsePow();
        while (Current.Kind == TokenKind.Operator && Current.Text is "*" or "/" or "//" or "%")
        {
            var op = Next().Text;
            left = new BinaryExpr(line, op, left, ParsePow());
            line = Current.Line;
        }

        return left;
    }

    private Expr ParsePow()
    {
        var line = Current.Line;
        var left = ParseUnary();
        while (SkipOperator("**"))
        {
            left = new BinaryExpr(line, "**", left, ParseUnary());
            line = Current.Line;
        }

        return left;
    }

    private Expr ParseUnary(bool withFilter = true)
    {
        var line = Current.Line;
        Expr node;
        if (Current.IsOperator("-") || Current.IsOperator("+"))
        {
            var op = Next().Text;
            Enter();
            try
            {
                node = new UnaryExpr(line, op, ParseUnary(false));
            }
            finally
            {
                _depth--;
            }
        }
        else
        {
            node = ParsePrimary();
        }

        node = ParsePostfix(node);
        return withFilter ? ParseFilterExpr(node) : node;
    }

    private Expr ParsePrimary()
    {
        var token = Current;
        switch (token.Kind)
        {
            case TokenKind.Name:
                Next();
                return token.Text switch
                {
                    "true" or "True" => new ConstExpr(token.Line, true),
                    "false" or "False" => new ConstExpr(token.Line, false),
                    "none" or "None" => new ConstExpr(token.Line, null),
                    _ => new NameExpr(token.Line, token.Text),
                };
            case TokenKind.String:
                Next();
                var text = token.Text;
                while (Current.Kind == TokenKind.String)
                {
                    text += Next().Text;
                }

                return new ConstExpr(token.Line, text);
            case TokenKind.Integer or TokenKind.Float:
                Next();
                return new ConstExpr(token.Line, token.Number);
            case TokenKind.Operator when token.Text == "(":
                Next();
                Enter();
                try
                {
                    var inner = ParseTuple(explicitParentheses: true);
                    Expect(TokenKind.Operator, ")");
                    return inner;
                }
                finally
                {
                    _depth--;
                }

            case TokenKind.Operator when token.Text == "[":
                return ParseList();
            case TokenKind.Operator when token.Text == "{":
                return ParseDict();
            default:
                throw Fail($"unexpected {PyText.Repr(token.Describe())}");
        }
    }

    private Expr ParseTuple(bool simplified = false, bool withCondExpr = true, string[]? extraEndRules = null, bool explicitParentheses = false)
    {
        var line = Current.Line;
        var items = new List<Expr>();
        var isTuple = false;
        while (true)
        {
            if (items.Count > 0)
            {
                Expect(TokenKind.Operator, ",");
            }

            if (IsTupleEnd(extraEndRules))
            {
                break;
            }

            items.Add(simplified ? ParsePrimary() : ParseExpression(withCondExpr));
            if (Current.IsOperator(","))
            {
                isTuple = true;
            }
            else
            {
                break;
            }

            line = Current.Line;
        }

        if (!isTuple)
        {
            if (items.Count > 0)
            {
                return items[0];
            }

            if (!explicitParentheses)
            {
                throw Fail($"Expected an expression, got {PyText.Repr(Current.Describe())}");
            }
        }

        return new TupleExpr(line, items);
    }

    private bool IsTupleEnd(string[]? extraEndRules) =>
        Current.Kind is TokenKind.VariableEnd or TokenKind.BlockEnd || Current.IsOperator(")")
        || (extraEndRules is not null && Current.Kind == TokenKind.Name && extraEndRules.Contains(Current.Text));

    private ListExpr ParseList()
    {
        var line = Expect(TokenKind.Operator, "[").Line;
        var items = new List<Expr>();
        while (!Current.IsOperator("]"))
        {
            if (items.Count > 0)
            {
                Expect(TokenKind.Operator, ",");
            }

            if (Current.IsOperator("]"))
            {
                break;
            }

            items.Add(ParseExpression());
        }

        Expect(TokenKind.Operator, "]");
        return new ListExpr(line, items);
    }

    private DictExpr ParseDict()
    {
        var line = Expect(TokenKind.Operator, "{").Line;
        var items = new List<(Expr, Expr)>();
        while (!Current.IsOperator("}"))
        {
            if (items.Count > 0)
            {
                Expect(TokenKind.Operator, ",");
            }

            if (Current.IsOperator("}"))
            {
                break;
            }

            var key = ParseExpression();
            Expect(TokenKind.Operator, ":");
            items.Add((key, ParseExpression()));
        }

        Expect(TokenKind.Operator, "}");
        return new DictExpr(line, items);
    }

    private Expr ParsePostfix(Expr node)
    {
        while (true)
        {
            if (Current.IsOperator(".") || Current.IsOperator("["))
            {
                node = ParseSubscript(node);
            }
            else if (Current.IsOperator("("))
            {
                node = new CallExpr(Current.Line, node, ParseCallArguments());
            }
            else
            {
                return node;
            }
        }
    }

    private Expr ParseFilterExpr(Expr node)
    {
        while (true)
        {
            if (Current.IsOperator("|"))
            {
                node = ParseFilter(node)!;
            }
            else if (Current.IsName("is"))
            {
                node = ParseTest(node);
            }
            else if (Current.IsOperator("("))
            {
                node = new CallExpr(Current.Line, node, ParseCallArguments());
            }
            else
            {
                return node;
            }
        }
    }

    private Expr ParseSubscript(Expr node)
    {
        var token = Next();
        if (token.Text == ".")
        {
            var attribute = Next();
            if (attribute.Kind == TokenKind.Name)
            {
                return new GetAttrExpr(token.Line, node, attribute.Text);
            }

            if (attribute.Kind != TokenKind.Integer)
            {
                throw Fail("expected name or number", attribute.Line);
            }

            return new GetItemExpr(token.Line, node, new ConstExpr(attribute.Line, attribute.Number));
        }

        var arguments = new List<Expr>();
        while (!Current.IsOperator("]"))
        {
            if (arguments.Count > 0)
            {
                Expect(TokenKind.Operator, ",");
            }

            arguments.Add(ParseSubscribed());
        }

        Expect(TokenKind.Operator, "]");
        var key = arguments.Count == 1 ? arguments[0] : new TupleExpr(token.Line, arguments);
        return new GetItemExpr(token.Line, node, key);
    }

    private Expr ParseSubscribed()
    {
        var line = Current.Line;
        var parts = new List<Expr?>();
        if (Current.IsOperator(":"))
        {
            Next();
            parts.Add(null);
        }
        else
        {
            var node = ParseExpression();
            if (!Current.IsOperator(":"))
            {
                return node;
            }

            Next();
            parts.Add(node);
        }

        if (Current.IsOperator(":"))
        {
            parts.Add(null);
        }
        else if (!(Current.IsOperator("]") || Current.IsOperator(",")))
        {
            parts.Add(ParseExpression());
        }
        else
        {
            parts.Add(null);
        }

        if (Current.IsOperator(":"))
        {
            Next();
            parts.Add(Current.IsOperator("]") || Current.IsOperator(",") ? null : ParseExpression());
        }
        else
        {
            parts.Add(null);
        }

        return new SliceExpr(line, parts[0], parts[1], parts[2]);
    }

    private Arguments ParseCallArguments()
    {
        var token = Expect(TokenKind.Operator, "(");
        var positional = new List<Expr>();
        var keywords = new List<KeyValuePair<string, Expr>>();
        Expr? dynamicPositional = null;
        Expr? dynamicKeywords = null;
        var requireComma = false;

        void Ensure(bool ok)
        {
            if (!ok)
            {
                throw Fail("invalid syntax for function call expression", token.Line);
            }
        }

        while (!Current.IsOperator(")"))
        {
            if (requireComma)
            {
                Expect(TokenKind.Operator, ",");
                if (Current.IsOperator(")"))
                {
                    break;
                }
            }

            if (Current.IsOperator("*"))
            {
                Ensure(dynamicPositional is null && dynamicKeywords is null);
                Next();
                dynamicPositional = ParseExpression();
            }
            else if (Current.IsOperator("**"))
            {
                Ensure(dynamicKeywords is null);
                Next();
                dynamicKeywords = ParseExpression();
            }
            else if (Current.Kind == TokenKind.Name && Look.IsOperator("="))
            {
                Ensure(dynamicKeywords is null);
                var key = Next().Text;
                Next();
                keywords.Add(new(key, ParseExpression()));
            }
            else
            {
                Ensure(dynamicPositional is null && dynamicKeywords is null && keywords.Count == 0);
                positional.Add(ParseExpression());
            }

            requireComma = true;
        }

        Expect(TokenKind.Operator, ")");
        return new Arguments(positional, keywords, dynamicPositional, dynamicKeywords);
    }

    private Expr? ParseFilter(Expr? node, bool startInline = false)
    {
        while (Current.IsOperator("|") || startInline)
        {
            if (!startInline)
            {
                Next();
            }

            var token = Expect(TokenKind.Name);
            var name = token.Text;
            while (Current.IsOperator("."))
            {
                Next();
                name += "." + Expect(TokenKind.Name).Text;
            }

            if (!BuiltinFilters.Exists(name))
            {
                throw new TemplateException(_name, "TemplateAssertionError", $"No filter named {PyText.Repr(name)}.", token.Line);
            }

            var arguments = Current.IsOperator("(") ? ParseCallArguments() : Arguments.Empty;
            node = new FilterExpr(token.Line, node, name, arguments);
            startInline = false;
        }

        return node;
    }

    private Expr ParseTest(Expr node)
    {
        var token = Next();
        var negated = SkipName("not");
        var nameToken = Expect(TokenKind.Name);
        var name = nameToken.Text;
        while (Current.IsOperator("."))
        {
            Next();
            name += "." + Expect(TokenKind.Name).Text;
        }

        if (!BuiltinTests.Exists(name))
        {
            throw new TemplateException(_name, "TemplateAssertionError", $"No test named {PyText.Repr(name)}.", nameToken.Line);
        }

        Arguments arguments;
        if (Current.IsOperator("("))
        {
            arguments = ParseCallArguments();
        }
        else if ((Current.Kind is TokenKind.Name or TokenKind.String or TokenKind.Integer or TokenKind.Float
                     || Current.IsOperator("(") || Current.IsOperator("[") || Current.IsOperator("{"))
                 && !(Current.IsName("else") || Current.IsName("or") || Current.IsName("and")))
        {
            if (Current.IsName("is"))
            {
                throw Fail("You cannot chain multiple tests with is");
            }

            var argument = ParsePostfix(ParsePrimary());
            arguments = new Arguments([argument], [], null, null);
        }
        else
        {
            arguments = Arguments.Empty;
        }

        Expr test = new TestExpr(token.Line, node, name, arguments);
        return negated ? new NotExpr(token.Line, test) : test;
    }
}
