namespace DistributedInference.Models.Templates;

/// <summary>
/// What jinja2's <c>select</c>, <c>map</c>, <c>reverse</c> ... return: a Python generator. It is true, has no length, and
/// iterates once (a second loop over it sees nothing); <c>|list</c> makes a list of it.
/// </summary>
internal sealed class PyGenerator(IEnumerable<object?> items, string name)
{
    private IEnumerator<object?>? _enumerator = items.GetEnumerator();

    public string Name { get; } = name;

    public IEnumerable<object?> Consume()
    {
        var enumerator = _enumerator;
        _enumerator = null;
        if (enumerator is null)
        {
            yield break;
        }

        using (enumerator)
        {
            while (enumerator.MoveNext())
            {
                yield return enumerator.Current;
            }
        }
    }
}
