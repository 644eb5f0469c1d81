using System.Globalization;
using System.Text;

namespace DistributedInference.Models.Templates;

/// <summary>
/// Python's <c>datetime.strftime</c> on Linux (glibc, C locale) for a naive local time: <c>%d %b %Y</c> gives
/// <c>14 Mar 2025</c>; glibc's <c>-</c> (no padding), <c>_</c> (space padding) and <c>0</c> flags; <c>%z</c> and <c>%Z</c>
/// are empty for a naive time; an unknown directive is copied as it is.
/// </summary>
internal static class Strftime
{
    private static readonly string[] Days = ["Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday"];
    private static readonly string[] Months = ["January", "February", "March", "April", "May", "June", "July", "August", "September", "October", "November", "December"];

    public static string Format(DateTime t, string format)
    {
        var builder = new StringBuilder();
        for (var i = 0; i < format.Length; i++)
        {
            if (format[i] != '%' || i + 1 >= format.Length)
            {
                builder.Append(format[i]);
                continue;
            }

            var start = i;
            var flag = '\0';
            if (format[i + 1] is '-' or '_' or '0' or '^' or '#' && i + 2 < format.Length)
            {
                flag = format[++i];
            }

            var code = format[++i];
            var text = Directive(t, code, flag);
            if (text is null)
            {
                builder.Append(format, start, i - start + 1);
            }
            else
            {
                builder.Append(flag == '^' ? text.ToUpperInvariant() : text);
            }
        }

        return builder.ToString();
    }

    private static string Number(long value, int width, char flag, char pad = '0')
    {
        var text = value.ToString(CultureInfo.InvariantCulture);
        if (flag == '-')
        {
            return text;
        }

        var fill = flag == '_' ? ' ' : flag == '0' ? '0' : pad;
        return text.PadLeft(width, fill);
    }

    private static int Hour12(DateTime t) => t.Hour % 12 == 0 ? 12 : t.Hour % 12;

    private static int WeekOfYear(DateTime t, DayOfWeek firstDay)
    {
        var dayOfYear = t.DayOfYear - 1;
        var weekday = ((int)t.DayOfWeek - (int)firstDay + 7) % 7;
        return (dayOfYear + 7 - weekday) / 7;
    }

    private static string? Directive(DateTime t, char code, char flag) => code switch
    {
        'a' => Days[(int)t.DayOfWeek][..3],
        'A' => Days[(int)t.DayOfWeek],
        'w' => ((int)t.DayOfWeek).ToString(CultureInfo.InvariantCulture),
        'u' => (t.DayOfWeek == DayOfWeek.Sunday ? 7 : (int)t.DayOfWeek).ToString(CultureInfo.InvariantCulture),
        'd' => Number(t.Day, 2, flag),
        'e' => Number(t.Day, 2, flag, ' '),
        'b' or 'h' => Months[t.Month - 1][..3],
        'B' => Months[t.Month - 1],
        'm' => Number(t.Month, 2, flag),
        'y' => Number(t.Year % 100, 2, flag),
        'Y' => t.Year.ToString(CultureInfo.InvariantCulture),
        'C' => Number(t.Year / 100, 2, flag),
        'G' => ISOWeek.GetYear(t).ToString(CultureInfo.InvariantCulture),
        'g' => Number(ISOWeek.GetYear(t) % 100, 2, flag),
        'V' => Number(ISOWeek.GetWeekOfYear(t), 2, flag),
        'H' => Number(t.Hour, 2, flag),
        'k' => Number(t.Hour, 2, flag, ' '),
        'I' => Number(Hour12(t), 2, flag),
        'l' => Number(Hour12(t), 2, flag, ' '),
        'p' => t.Hour < 12 ? "AM" : "PM",
        'P' => t.Hour < 12 ? "am" : "pm",
        'M' => Number(t.Minute, 2, flag),
        'S' => Number(t.Second, 2, flag),
        'f' => ((t.Ticks % TimeSpan.TicksPerSecond) / 10).ToString("000000", CultureInfo.InvariantCulture),
        'j' => Number(t.DayOfYear, 3, flag),
        'U' => Number(WeekOfYear(t, DayOfWeek.Sunday), 2, flag),
        'W' => Number(WeekOfYear(t, DayOfWeek.Monday), 2, flag),
        'c' => Format(t, "%a %b %e %H:%M:%S %Y"),
        'x' or 'D' => Format(t, "%m/%d/%y"),
        'X' or 'T' => Format(t, "%H:%M:%S"),
        'F' => Format(t, "%Y-%m-%d"),
        'R' => Format(t, "%H:%M"),
        'r' => Format(t, "%I:%M:%S %p"),
        's' => new DateTimeOffset(t).ToUnixTimeSeconds().ToString(CultureInfo.InvariantCulture),
        'n' => "\n",
        't' => "\t",
        'z' or 'Z' => string.Empty,
        '%' => "%",
        _ => null,
    };
}
