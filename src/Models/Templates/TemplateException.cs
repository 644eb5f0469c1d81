namespace DistributedInference.Models.Templates;

/// <summary>
/// A chat template that could not be parsed or rendered. <see cref="Exception.Message"/> is one line naming the template
/// (and the line of the template, when known) with the error; <see cref="Reason"/> is the error alone, as jinja2 words it
/// (for <c>raise_exception(msg)</c>: <c>msg</c>, exactly); <see cref="ErrorType"/> is the Python exception jinja2 would
/// raise (<c>TemplateError</c> for <c>raise_exception</c>, <c>TemplateSyntaxError</c>, <c>UndefinedError</c>,
/// <c>TypeError</c>, <c>SecurityError</c>, ...).
/// </summary>
public sealed class TemplateException : Exception
{
    public TemplateException(string templateName, string errorType, string reason, int? line = null)
        : base(Format(templateName, errorType, reason, line))
    {
        TemplateName = templateName;
        ErrorType = errorType;
        Reason = reason;
        Line = line;
    }

    /// <summary>The template's name (its file, or the name the caller gave).</summary>
    public string TemplateName { get; }

    /// <summary>The Python exception type jinja2 raises for this error.</summary>
    public string ErrorType { get; }

    /// <summary>The error alone, without the template's name.</summary>
    public string Reason { get; }

    /// <summary>The line of the template the error is on, when known.</summary>
    public int? Line { get; }

    /// <summary>Whether the template itself raised it (<c>raise_exception</c>): its message is meant for the user.</summary>
    public bool IsRaisedByTemplate => ErrorType == RaisedType;

    internal const string RaisedType = "TemplateError";

    internal static TemplateException Syntax(string templateName, int line, string reason) =>
        new(templateName, "TemplateSyntaxError", reason, line);

    private static string Format(string templateName, string errorType, string reason, int? line)
    {
        var where = line is { } l ? $"{templateName} line {l}" : templateName;
        var text = errorType == RaisedType ? reason : $"{errorType}: {reason}";
        return $"{where}: {text.ReplaceLineEndings(" ")}";
    }
}
