namespace DistributedInference.Models.Templates;

/// <summary>
/// jinja2's <c>namespace()</c>: the one object a template may change (<c>{% set ns.x = ... %}</c>), so state can leave a
/// loop body.
/// </summary>
internal sealed class TemplateNamespace
{
    public PyDict Attributes { get; } = new();
}
