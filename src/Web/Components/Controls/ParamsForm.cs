using System.Globalization;
using System.Text.Json;
using System.Text.Json.Serialization.Metadata;
using Pipeline.Jobs.RunSpecs;
using Pipeline.Stages;

namespace Pipeline.Web.Components.Controls;

public enum FieldKind { WholeNumber, Number, Text, Switch, Choice }

/// <summary>
/// One input of the launch form: a stage's parameter at a JSON path (<c>model.width</c>), its kind, the value the plan has
/// (defaults filled in, as RunSpec JSON text), and for enums the JSON names to choose from.
/// </summary>
public sealed record ParamField(string Stage, string Path, FieldKind Kind, bool Nullable, string? Original, IReadOnlyList<string> Choices)
{
    /// <summary>The override key, as the CLI's --set names it and as RunSpec errors name the field.</summary>
    public string Key => $"stages.{Stage}.params.{Path}";

    /// <summary>A stable id for browser tests: <c>param-shards-seed</c>.</summary>
    public string TestId => "param-" + Stage + "-" + Path.Replace('.', '-');
}

/// <summary>
/// The launch form, generated from each planned stage's params record (<see cref="StageCatalog"/>): every number, string,
/// bool and enum, nested records followed to their leaves, named as the RunSpec's JSON names them. An edit becomes a
/// <c>stages.NAME.params.PATH=value</c> override, the same text the CLI's --set takes. Lists and maps are left to the
/// RunSpec editor.
/// </summary>
public static class ParamsForm
{
    private const int MaxDepth = 4;

    public static IReadOnlyList<ParamField> For(IReadOnlyList<PlannedStage> plan)
    {
        var fields = new List<ParamField>();
        foreach (var stage in plan) Walk(stage.Name, "", stage.Kind.ParamsType, stage.Params, 0, fields);
        return fields;
    }

    private static void Walk(string stage, string prefix, Type type, object? value, int depth, List<ParamField> fields)
    {
        var info = PipelineJson.Options.GetTypeInfo(type);
        if (info.Kind != JsonTypeInfoKind.Object) return;
        foreach (var p in info.Properties)
        {
            if (p.Get is null) continue;
            var path = prefix.Length == 0 ? p.Name : prefix + "." + p.Name;
            var current = value is null ? null : p.Get(value);
            var clr = System.Nullable.GetUnderlyingType(p.PropertyType) ?? p.PropertyType;
            var nullable = System.Nullable.GetUnderlyingType(p.PropertyType) is not null || !p.PropertyType.IsValueType;
            if (KindOf(clr) is { } kind)
            {
                fields.Add(new ParamField(stage, path, kind, nullable, current is null ? null : Text(current, kind),
                    kind == FieldKind.Choice ? [.. Enum.GetValues(clr).Cast<object>().Select(v => Text(v, kind))] : []));
            }
            else if (depth < MaxDepth && current is not null && PipelineJson.Options.GetTypeInfo(clr).Kind == JsonTypeInfoKind.Object)
            {
                Walk(stage, path, current.GetType(), current, depth + 1, fields);
            }
        }
    }

    private static FieldKind? KindOf(Type t) =>
        t.IsEnum ? FieldKind.Choice
        : t == typeof(string) ? FieldKind.Text
        : t == typeof(bool) ? FieldKind.Switch
        : t == typeof(int) || t == typeof(long) || t == typeof(short) || t == typeof(uint) || t == typeof(ulong) ? FieldKind.WholeNumber
        : t == typeof(double) || t == typeof(float) || t == typeof(decimal) ? FieldKind.Number
        : null;

    /// <summary>A value as the form shows it: numbers invariant, enums by their JSON name, bools true/false, strings raw.</summary>
    private static string Text(object value, FieldKind kind) => kind switch
    {
        FieldKind.Choice => JsonSerializer.Deserialize<string>(JsonSerializer.Serialize(value, value.GetType(), PipelineJson.Options))!,
        FieldKind.Switch => (bool)value ? "true" : "false",
        FieldKind.Text => (string)value,
        _ => Convert.ToString(value, CultureInfo.InvariantCulture)!,
    };

    /// <summary>
    /// The override an edit makes, or null when the value is unchanged (an emptied optional field sets JSON null). Strings
    /// are written as JSON strings, so "7" stays a string; numbers are passed as typed and the RunSpec checks them.
    /// </summary>
    public static string? Override(ParamField field, string? edited)
    {
        if (string.Equals(edited ?? "", field.Original ?? "", StringComparison.Ordinal)) return null;
        var value = string.IsNullOrWhiteSpace(edited) && field.Kind != FieldKind.Text ? null : edited ?? "";
        if (value is null) return field.Nullable ? $"{field.Key}=null" : null;
        return field.Kind switch
        {
            FieldKind.Text or FieldKind.Choice => $"{field.Key}={JsonSerializer.Serialize(value)}",
            _ => $"{field.Key}={value.Trim()}",
        };
    }

    /// <summary>The overrides of every edited field, in form order.</summary>
    public static IReadOnlyList<string> Overrides(IReadOnlyList<ParamField> fields, IReadOnlyDictionary<string, string?> values) =>
        [.. fields.Select(f => values.TryGetValue(f.Key, out var v) ? Override(f, v) : null).OfType<string>()];
}
