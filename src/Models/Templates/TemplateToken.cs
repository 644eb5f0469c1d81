namespace DistributedInference.Models.Templates;

/// <summary>The kinds of token the template lexer makes (jinja2's <c>lexer.py</c> token types).</summary>
internal enum TokenKind
{
    Data,
    VariableBegin,
    VariableEnd,
    BlockBegin,
    BlockEnd,
    Name,
    String,
    Integer,
    Float,
    Operator,
    Eof,
}

/// <summary>
/// One token: its kind, its text (an operator's symbol, a name, a string literal already unescaped, template data) and
/// for numbers the parsed value (<see cref="long"/> or <see cref="double"/>).
/// </summary>
internal sealed record TemplateToken(TokenKind Kind, string Text, int Line, object? Number = null)
{
    public bool IsOperator(string symbol) => Kind == TokenKind.Operator && Text == symbol;

    public bool IsName(string name) => Kind == TokenKind.Name && Text == name;

    /// <summary>How jinja2 names a token in its error messages (<c>describe_token</c>).</summary>
    public string Describe() => Kind switch
    {
        TokenKind.Name or TokenKind.Operator => Text,
        _ => Describe(Kind),
    };

    public static string Describe(TokenKind kind) => kind switch
    {
        TokenKind.Data => "template data / text",
        TokenKind.VariableBegin => "begin of print statement",
        TokenKind.VariableEnd => "end of print statement",
        TokenKind.BlockBegin => "begin of statement block",
        TokenKind.BlockEnd => "end of statement block",
        TokenKind.Name => "name",
        TokenKind.String => "string",
        TokenKind.Integer => "integer",
        TokenKind.Float => "float",
        TokenKind.Operator => "operator",
        _ => "end of template",
    };
}
