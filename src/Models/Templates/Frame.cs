namespace DistributedInference.Models.Templates;

/// <summary>
/// One scope of variables, as jinja2 scopes them: the globals and the render's variables at the bottom, the template's
/// own above them, a fresh child for each loop iteration, macro call, <c>with</c> and set block. <c>{% set %}</c> writes
/// to the scope it runs in (an <c>if</c> opens none), so what a loop body sets is gone after the iteration.
/// </summary>
internal sealed class Frame(Frame? parent)
{
    private readonly Dictionary<string, object?> _variables = new(StringComparer.Ordinal);

    public Frame? Parent { get; } = parent;

    public object? Resolve(string name)
    {
        for (var frame = this; frame is not null; frame = frame.Parent)
        {
            if (frame._variables.TryGetValue(name, out var value))
            {
                return value;
            }
        }

        return Undefined.Variable(name);
    }

    public void Set(string name, object? value) => _variables[name] = value;
}
