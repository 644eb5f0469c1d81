namespace DistributedInference.Models.Templates;

/// <summary>Something a template can call: a global function, a bound method of a value, a macro, a recursive loop.</summary>
internal interface ITemplateCallable
{
    /// <summary>The name Python would print for it.</summary>
    string Name { get; }

    /// <exception cref="TemplateError">The call failed the way its Python counterpart would.</exception>
    object? Call(TemplateRenderer renderer, CallArguments arguments);
}

/// <summary>A global function (<c>range</c>, <c>namespace</c>, <c>raise_exception</c>, ...).</summary>
internal sealed class BuiltinFunction(string name, Func<TemplateRenderer, CallArguments, object?> body) : ITemplateCallable
{
    public string Name { get; } = name;

    public object? Call(TemplateRenderer renderer, CallArguments arguments) => body(renderer, arguments);
}

/// <summary>A method of a built-in value looked up by attribute (<c>content.split</c>, <c>message.items</c>), called later.</summary>
internal sealed class BoundMethod(object? target, string name) : ITemplateCallable
{
    public object? Target { get; } = target;

    public string Name { get; } = name;

    public object? Call(TemplateRenderer renderer, CallArguments arguments) => PyMethods.Call(renderer, Target, Name, arguments);
}
