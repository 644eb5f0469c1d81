namespace DistributedInference.Models.Templates;

/// <summary>
/// An error while a template runs, before the renderer adds the template's name and line: the Python exception type
/// jinja2 would raise and its message (<c>UndefinedError</c>, <c>TypeError</c>, ...; <c>TemplateError</c> for
/// <c>raise_exception</c>).
/// </summary>
internal sealed class TemplateError : Exception
{
    public TemplateError(string errorType, string message)
        : base(message)
    {
        ErrorType = errorType;
    }

    public string ErrorType { get; }

    public static TemplateError Type(string message) => new("TypeError", message);

    public static TemplateError Value(string message) => new("ValueError", message);

    public static TemplateError Undefined(string message) => new("UndefinedError", message);

    public static TemplateError Security(string message) => new("SecurityError", message);

    public static TemplateError Runtime(string message) => new("TemplateRuntimeError", message);

    public static TemplateError FilterArgument(string message) => new("FilterArgumentError", message);
}
