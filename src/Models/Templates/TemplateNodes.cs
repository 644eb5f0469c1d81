namespace DistributedInference.Models.Templates;

// The syntax tree jinja2's parser builds (jinja2/nodes.py), reduced to what rendering needs. Every node knows its line.

/// <summary>A node of a template's syntax tree.</summary>
internal abstract record Node(int Line);

/// <summary>An expression: evaluates to a value.</summary>
internal abstract record Expr(int Line) : Node(Line);

internal sealed record ConstExpr(int Line, object? Value) : Expr(Line);

internal sealed record NameExpr(int Line, string Name) : Expr(Line);

/// <summary><c>obj.attr</c> (attribute first, then item).</summary>
internal sealed record GetAttrExpr(int Line, Expr Target, string Attribute) : Expr(Line);

/// <summary><c>obj[key]</c> (item first, then attribute); <c>obj.0</c> too.</summary>
internal sealed record GetItemExpr(int Line, Expr Target, Expr Key) : Expr(Line);

internal sealed record SliceExpr(int Line, Expr? Start, Expr? Stop, Expr? Step) : Expr(Line);

/// <summary>Arguments of a call, filter or test: positionals, keywords, <c>*args</c>, <c>**kwargs</c>.</summary>
internal sealed record Arguments(IReadOnlyList<Expr> Positional, IReadOnlyList<KeyValuePair<string, Expr>> Keywords, Expr? DynamicPositional, Expr? DynamicKeywords)
{
    public static readonly Arguments Empty = new([], [], null, null);
}

internal sealed record CallExpr(int Line, Expr Callee, Arguments Arguments) : Expr(Line);

/// <summary><c>value | name(args)</c>; <see cref="Target"/> is null in a filter block or a set block's filter.</summary>
internal sealed record FilterExpr(int Line, Expr? Target, string Name, Arguments Arguments) : Expr(Line);

/// <summary><c>value is name(args)</c>.</summary>
internal sealed record TestExpr(int Line, Expr Target, string Name, Arguments Arguments) : Expr(Line);

internal sealed record NotExpr(int Line, Expr Operand) : Expr(Line);

/// <summary>Unary <c>-</c> or <c>+</c>.</summary>
internal sealed record UnaryExpr(int Line, string Operator, Expr Operand) : Expr(Line);

/// <summary><c>+ - * / // % ** ~</c>.</summary>
internal sealed record BinaryExpr(int Line, string Operator, Expr Left, Expr Right) : Expr(Line);

internal sealed record AndExpr(int Line, Expr Left, Expr Right) : Expr(Line);

internal sealed record OrExpr(int Line, Expr Left, Expr Right) : Expr(Line);

/// <summary>A chain of comparisons (<c>a &lt; b == c</c>, <c>in</c>, <c>not in</c>) evaluated as Python does.</summary>
internal sealed record CompareExpr(int Line, Expr First, IReadOnlyList<(string Operator, Expr Operand)> Rest) : Expr(Line);

/// <summary><c>a if test else b</c> (no else: undefined).</summary>
internal sealed record CondExpr(int Line, Expr Test, Expr WhenTrue, Expr? WhenFalse) : Expr(Line);

internal sealed record ListExpr(int Line, IReadOnlyList<Expr> Items) : Expr(Line);

internal sealed record TupleExpr(int Line, IReadOnlyList<Expr> Items) : Expr(Line);

internal sealed record DictExpr(int Line, IReadOnlyList<(Expr Key, Expr Value)> Items) : Expr(Line);

/// <summary>A statement: renders into the output.</summary>
internal abstract record Stmt(int Line) : Node(Line);

/// <summary>Text and <c>{{ expressions }}</c>, in order; text items are <see cref="ConstExpr"/> strings.</summary>
internal sealed record OutputStmt(int Line, IReadOnlyList<Expr> Items, IReadOnlyList<bool> IsData) : Stmt(Line);

internal sealed record IfStmt(int Line, IReadOnlyList<(Expr Test, IReadOnlyList<Stmt> Body)> Branches, IReadOnlyList<Stmt> Else) : Stmt(Line);

internal sealed record ForStmt(int Line, Expr Target, Expr Iterable, IReadOnlyList<Stmt> Body, IReadOnlyList<Stmt> Else, Expr? Filter, bool Recursive) : Stmt(Line);

/// <summary>The target of <c>set</c> or <c>for</c>: a name, a tuple of targets, or a namespace attribute.</summary>
internal sealed record NamespaceRefExpr(int Line, string Name, string Attribute) : Expr(Line);

internal sealed record SetStmt(int Line, Expr Target, Expr Value) : Stmt(Line);

/// <summary><c>{% set x %}...{% endset %}</c>, the body rendered (and filtered) into the variable.</summary>
internal sealed record SetBlockStmt(int Line, Expr Target, FilterExpr? Filter, IReadOnlyList<Stmt> Body) : Stmt(Line);

internal sealed record MacroStmt(int Line, string Name, IReadOnlyList<string> Parameters, IReadOnlyList<Expr> Defaults, IReadOnlyList<Stmt> Body) : Stmt(Line);

/// <summary><c>{% call(params) macro(args) %}body{% endcall %}</c>: the body is the macro's <c>caller()</c>.</summary>
internal sealed record CallBlockStmt(int Line, CallExpr Call, IReadOnlyList<string> Parameters, IReadOnlyList<Expr> Defaults, IReadOnlyList<Stmt> Body) : Stmt(Line);

internal sealed record FilterBlockStmt(int Line, FilterExpr Filter, IReadOnlyList<Stmt> Body) : Stmt(Line);

internal sealed record WithStmt(int Line, IReadOnlyList<(Expr Target, Expr Value)> Assignments, IReadOnlyList<Stmt> Body) : Stmt(Line);

/// <summary>A body rendered in place in a scope of its own (<c>{% block %}</c> without inheritance).</summary>
internal sealed record ScopeStmt(int Line, IReadOnlyList<Stmt> Body, bool NewScope) : Stmt(Line);

internal sealed record BreakStmt(int Line) : Stmt(Line);

internal sealed record ContinueStmt(int Line) : Stmt(Line);

/// <summary><c>{% do expr %}</c>-like: an expression evaluated for nothing (used for <c>{% print %}</c>-less forms).</summary>
internal sealed record ExprStmt(int Line, Expr Value) : Stmt(Line);

/// <summary><c>include</c>, <c>import</c>, <c>from ... import</c>, <c>extends</c>: no loader in the sandbox, an error when run.</summary>
internal sealed record LoaderStmt(int Line, string Tag) : Stmt(Line);
