namespace DistributedInference.Models.Templates;

/// <summary>
/// A Python dict: keys in insertion order, looked up with Python's equality (<c>1 == 1.0 == True</c>, strings by
/// ordinal); None is a key like any other; lists and dicts are not (unhashable).
/// </summary>
internal sealed class PyDict
{
    private static readonly object NoneKey = new();
    private readonly OrderedDictionary<object, object?> _items = new(KeyComparer.Instance);

    public int Count => _items.Count;

    public IEnumerable<object?> Keys => _items.Keys.Select(FromKey);

    public IEnumerable<object?> Values => _items.Values;

    public IEnumerable<KeyValuePair<object?, object?>> Items =>
        _items.Select(pair => new KeyValuePair<object?, object?>(FromKey(pair.Key), pair.Value));

    public bool TryGet(object? key, out object? value) => _items.TryGetValue(ToKey(key), out value);

    public bool ContainsKey(object? key) => _items.ContainsKey(ToKey(key));

    public void Set(object? key, object? value) => _items[ToKey(key)] = value;

    public bool Remove(object? key, out object? value) => _items.Remove(ToKey(key), out value);

    public void Clear() => _items.Clear();

    public PyDict Copy()
    {
        var copy = new PyDict();
        foreach (var pair in _items)
        {
            copy._items[pair.Key] = pair.Value;
        }

        return copy;
    }

    private static object ToKey(object? key)
    {
        if (key is null)
        {
            return NoneKey;
        }

        KeyComparer.CheckHashable(key);
        return key;
    }

    private static object? FromKey(object key) => ReferenceEquals(key, NoneKey) ? null : key;

    private sealed class KeyComparer : IEqualityComparer<object>
    {
        public static readonly KeyComparer Instance = new();

        public static void CheckHashable(object? key)
        {
            switch (key)
            {
                case List<object?> or PyDict:
                    throw TemplateError.Type($"unhashable type: {PyText.Repr(PyOps.TypeName(key))}");
                case PyTuple tuple:
                    foreach (var item in tuple.Items)
                    {
                        CheckHashable(item);
                    }

                    break;
            }
        }

        public new bool Equals(object? x, object? y) =>
            ReferenceEquals(x, y) || (!ReferenceEquals(x, NoneKey) && !ReferenceEquals(y, NoneKey) && PyOps.Equal(x, y));

        public int GetHashCode(object obj) => Hash(obj);

        private static int Hash(object? obj) => obj switch
        {
            null => 0,
            bool b => b ? 1 : 0,
            long l => l.GetHashCode(),
            double d when double.IsFinite(d) && Math.Floor(d) == d && Math.Abs(d) < 9.2e18 => ((long)d).GetHashCode(),
            double d => d.GetHashCode(),
            string s => StringComparer.Ordinal.GetHashCode(s),
            PyTuple t => t.Items.Aggregate(17, (h, item) => unchecked((h * 31) + Hash(item))),
            _ => obj.GetHashCode(),
        };
    }
}
