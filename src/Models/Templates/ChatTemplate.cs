using System.Text.Json.Nodes;

namespace DistributedInference.Models.Templates;

/// <summary>
/// A Jinja2 template parsed once and rendered as Hugging Face transformers renders chat templates
/// (<c>utils/chat_template_utils.py</c> <c>_compile_jinja_template</c>): jinja2 3.1 semantics in an
/// <c>ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True)</c> with the <c>loopcontrols</c> extension
/// and the <c>{% generation %}</c> tag, <c>tojson</c> as <c>json.dumps(ensure_ascii=False)</c>, and the globals
/// <c>raise_exception</c> and <c>strftime_now</c>. Values behave as Python's (dict equality, int vs float, str methods
/// with arguments, slicing, undefined). Sandboxed: a template reads only its variables and the clock, and its loops,
/// recursion and output are bounded (<see cref="TemplateRenderOptions"/>). Thread-safe: one parsed template may be
/// rendered by many threads at once.
/// </summary>
public sealed class ChatTemplate
{
    private readonly IReadOnlyList<Stmt> _body;

    private ChatTemplate(string source, string name, IReadOnlyList<Stmt> body)
    {
        Source = source;
        Name = name;
        _body = body;
    }

    /// <summary>The template's name in error messages (its file, usually).</summary>
    public string Name { get; }

    /// <summary>The template text as given.</summary>
    public string Source { get; }

    /// <summary>Parses a template.</summary>
    /// <exception cref="TemplateException">The text is not a valid template (a syntax error, an unknown filter or test).</exception>
    public static ChatTemplate Parse(string source, string name = "chat_template")
    {
        ArgumentNullException.ThrowIfNull(source);
        return new ChatTemplate(source, name, TemplateParser.Parse(source, name));
    }

    /// <summary>Renders the template with these variables (JSON values: objects keep their key order, <c>12</c> is an
    /// int and <c>12.0</c> a float; a node made from a CLR <c>double</c> is a float).</summary>
    /// <exception cref="TemplateException">The template raised (<c>raise_exception</c>, see
    /// <see cref="TemplateException.IsRaisedByTemplate"/>) or failed (an undefined value used, a type error, a sandbox
    /// bound).</exception>
    public string Render(IEnumerable<KeyValuePair<string, JsonNode?>> variables, TemplateRenderOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(variables);
        return Render(variables.Select(v => new KeyValuePair<string, object?>(v.Key, PyJson.FromNode(v.Value))), options);
    }

    internal string Render(IEnumerable<KeyValuePair<string, object?>> values, TemplateRenderOptions? options) =>
        TemplateRenderer.Render(_body, Name, values, options ?? TemplateRenderOptions.Default);
}
