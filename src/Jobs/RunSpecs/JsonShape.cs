using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.Json.Serialization.Metadata;
using Pipeline.Stages;
using Pipeline.Stages.Execution;

namespace Pipeline.Jobs.RunSpecs;

/// <summary>
/// Checks that a JSON value has the shape the .NET type that will read it expects (<see cref="PipelineJson.Options"/>'s
/// own metadata: snake_case names, nullability, required members), and says what is wrong in JSON's words — "must be an
/// integer; got the string 'x'" — rather than in the CLR's (<c>System.Nullable`1[System.Int32]</c>). Every problem is
/// reported, each under its field, so that a RunSpec's errors can be fixed in one pass.
/// Stricter than the serializer where a RunSpec should be: numbers are JSON numbers (no "NaN" strings, nothing that
/// overflows to infinity) and enums are their names (no integers).
/// </summary>
public static class JsonShape
{
    /// <summary>Adds to <paramref name="errors"/> every place where <paramref name="value"/> does not fit <paramref name="type"/>.</summary>
    public static void Check(JsonElement value, Type type, string field, List<ValidationError> errors) =>
        Check(value, type, field, nullable: false, errors);

    /// <summary>The JSON a value of <paramref name="type"/> is written as: "an integer", "a string", "an array of strings", …</summary>
    public static string Describe(Type type) => Describe(type, plural: false);

    /// <summary>"must be an integer; got the string 'x'", the form of every type error.</summary>
    public static string MustBe(Type expected, string got) => $"must be {Describe(expected)}; got {got}";

    private static string MustBe(Type expected, JsonElement got) => MustBe(expected, Describe(got));

    /// <summary>The JSON field <paramref name="name"/> inside <paramref name="parent"/> (an empty name shows as <c>''</c>).</summary>
    public static string Child(string parent, string name)
    {
        var shown = name.Length == 0 ? "''" : name;
        return parent.Length == 0 ? shown : $"{parent}.{shown}";
    }

    private static void Check(JsonElement value, Type type, string field, bool nullable, List<ValidationError> errors)
    {
        if (Nullable.GetUnderlyingType(type) is { } underlying) (type, nullable) = (underlying, true);
        if (value.ValueKind == JsonValueKind.Null)
        {
            if (!nullable && !IsAnyValue(type)) errors.Add(new(field, MustBe(type, value)));
            return;
        }
        switch (ScalarOf(type))
        {
            case Scalar.Any:
                return;
            case Scalar.String:
                if (value.ValueKind != JsonValueKind.String) errors.Add(new(field, MustBe(type, value)));
                return;
            case Scalar.Boolean:
                if (value.ValueKind is not (JsonValueKind.True or JsonValueKind.False)) errors.Add(new(field, MustBe(type, value)));
                return;
            case Scalar.Enum:
                if (value.ValueKind != JsonValueKind.String || !EnumNames(type).Contains(value.GetString()!)) errors.Add(new(field, MustBe(type, value)));
                return;
            case Scalar.Integer:
                CheckInteger(value, type, field, errors);
                return;
            case Scalar.Number:
                CheckNumber(value, type, field, errors);
                return;
        }

        var info = PipelineJson.Options.GetTypeInfo(type);
        switch (info.Kind)
        {
            case JsonTypeInfoKind.Enumerable when value.ValueKind == JsonValueKind.Array:
                var i = 0;
                foreach (var item in value.EnumerateArray()) Check(item, info.ElementType!, $"{field}[{i++}]", nullable: false, errors);
                return;
            case JsonTypeInfoKind.Dictionary when value.ValueKind == JsonValueKind.Object:
                foreach (var p in value.EnumerateObject()) Check(p.Value, info.ElementType!, Child(field, p.Name), nullable: false, errors);
                return;
            case JsonTypeInfoKind.Object when value.ValueKind == JsonValueKind.Object:
                CheckObject(value, info, field, errors);
                return;
            case JsonTypeInfoKind.None:
                return; // a type with a converter of its own: the serializer decides
            default:
                errors.Add(new(field, MustBe(type, value)));
                return;
        }
    }

    private static void CheckObject(JsonElement value, JsonTypeInfo info, string field, List<ValidationError> errors)
    {
        var members = Members(info);
        foreach (var p in value.EnumerateObject())
        {
            var at = Child(field, p.Name);
            if (members.FirstOrDefault(m => m.Name == p.Name) is not { } member)
            {
                errors.Add(new(at, $"unknown field; known fields here: {string.Join(", ", members.Select(m => m.Name))}"));
                continue;
            }
            Check(p.Value, member.PropertyType, at, member.AssociatedParameter?.IsNullable ?? member.IsSetNullable, errors);
        }
        foreach (var member in members.Where(m => m.IsRequired && !value.TryGetProperty(m.Name, out _)))
        {
            errors.Add(new(Child(field, member.Name), $"is required; give {Describe(member.PropertyType)}"));
        }
    }

    /// <summary>The fields a JSON object may hold for this type: those the serializer can set.</summary>
    private static List<JsonPropertyInfo> Members(JsonTypeInfo info) =>
        [.. info.Properties.Where(p => p.Set is not null || p.AssociatedParameter is not null)];

    private static void CheckInteger(JsonElement value, Type type, string field, List<ValidationError> errors)
    {
        if (value.ValueKind != JsonValueKind.Number)
        {
            errors.Add(new(field, MustBe(type, value)));
            return;
        }
        // The serializer reads integers with these same methods: "1.0" and "1e3" are not integers to it either.
        var fits = Type.GetTypeCode(type) switch
        {
            TypeCode.SByte => value.TryGetSByte(out _),
            TypeCode.Byte => value.TryGetByte(out _),
            TypeCode.Int16 => value.TryGetInt16(out _),
            TypeCode.UInt16 => value.TryGetUInt16(out _),
            TypeCode.Int32 => value.TryGetInt32(out _),
            TypeCode.UInt32 => value.TryGetUInt32(out _),
            TypeCode.Int64 => value.TryGetInt64(out _),
            _ => value.TryGetUInt64(out _),
        };
        if (fits) return;
        var raw = value.GetRawText();
        errors.Add(new(field, raw.AsSpan().IndexOfAny(".eE") >= 0
            ? $"must be {Describe(type)} (whole digits, no fraction or exponent); got {Describe(value)}"
            : $"must be {Describe(type)} between {IntegerRange(type)}; got {Describe(value)}"));
    }

    private static void CheckNumber(JsonElement value, Type type, string field, List<ValidationError> errors)
    {
        if (value.ValueKind != JsonValueKind.Number)
        {
            errors.Add(new(field, MustBe(type, value)));
            return;
        }
        var finite = Type.GetTypeCode(type) switch
        {
            TypeCode.Single => value.TryGetSingle(out var f) && float.IsFinite(f),
            TypeCode.Decimal => value.TryGetDecimal(out _),
            _ => value.TryGetDouble(out var d) && double.IsFinite(d),
        };
        if (!finite) errors.Add(new(field, $"must be {Describe(type)} within {NumberRange(type)}; got {Describe(value)}"));
    }

    private static string NumberRange(Type type) => Type.GetTypeCode(type) switch
    {
        TypeCode.Single => "±3.4e38",
        TypeCode.Decimal => "±7.9e28",
        _ => "±1.8e308",
    };

    private static string IntegerRange(Type type) => Type.GetTypeCode(type) switch
    {
        TypeCode.SByte => $"{sbyte.MinValue} and {sbyte.MaxValue}",
        TypeCode.Byte => $"{byte.MinValue} and {byte.MaxValue}",
        TypeCode.Int16 => $"{short.MinValue} and {short.MaxValue}",
        TypeCode.UInt16 => $"{ushort.MinValue} and {ushort.MaxValue}",
        TypeCode.Int32 => $"{int.MinValue} and {int.MaxValue}",
        TypeCode.UInt32 => $"{uint.MinValue} and {uint.MaxValue}",
        TypeCode.Int64 => $"{long.MinValue} and {long.MaxValue}",
        _ => $"{ulong.MinValue} and {ulong.MaxValue}",
    };

    private enum Scalar { None, Any, String, Boolean, Enum, Integer, Number }

    private static Scalar ScalarOf(Type type)
    {
        if (IsAnyValue(type)) return Scalar.Any;
        if (type.IsEnum) return Scalar.Enum;
        return Type.GetTypeCode(type) switch
        {
            TypeCode.String or TypeCode.Char or TypeCode.DateTime => Scalar.String,
            TypeCode.Boolean => Scalar.Boolean,
            TypeCode.SByte or TypeCode.Byte or TypeCode.Int16 or TypeCode.UInt16 or TypeCode.Int32 or TypeCode.UInt32
                or TypeCode.Int64 or TypeCode.UInt64 => Scalar.Integer,
            TypeCode.Single or TypeCode.Double or TypeCode.Decimal => Scalar.Number,
            _ when type == typeof(Guid) || type == typeof(TimeSpan) || type == typeof(DateTimeOffset) || type == typeof(Uri) => Scalar.String,
            _ => Scalar.None,
        };
    }

    private static bool IsAnyValue(Type type) =>
        type == typeof(JsonElement) || type == typeof(object) || typeof(JsonNode).IsAssignableFrom(type) || type == typeof(JsonDocument);

    /// <summary>The names an enum is written with, as <see cref="PipelineJson"/> writes them (snake_case).</summary>
    private static IReadOnlyList<string> EnumNames(Type type) =>
        [.. Enum.GetValues(type).Cast<object>().Select(v => JsonSerializer.SerializeToElement(v, type, PipelineJson.Options).GetString()!)];

    /// <summary>The one mapping from a CLR type to the JSON that holds it.</summary>
    private static string Describe(Type type, bool plural)
    {
        if (Nullable.GetUnderlyingType(type) is { } underlying) type = underlying;
        switch (ScalarOf(type))
        {
            case Scalar.Any: return plural ? "JSON values" : "any JSON value";
            case Scalar.String: return plural ? "strings" : "a string";
            case Scalar.Boolean: return plural ? "true or false values" : "true or false";
            case Scalar.Integer: return plural ? "integers" : "an integer";
            case Scalar.Number: return plural ? "numbers" : "a number";
            case Scalar.Enum:
                var names = string.Join(", ", EnumNames(type).Select(n => $"'{n}'"));
                return plural ? $"strings, each one of {names}" : $"one of {names}";
        }
        var info = PipelineJson.Options.GetTypeInfo(type);
        return info.Kind switch
        {
            JsonTypeInfoKind.Enumerable => (plural ? "arrays of " : "an array of ") + Describe(info.ElementType!, plural: true),
            JsonTypeInfoKind.Object or JsonTypeInfoKind.Dictionary => plural ? "objects" : "an object",
            _ => plural ? "JSON values" : "a JSON value",
        };
    }

    /// <summary>What a JSON value is, for "got …": "the string 'x'", "the number 1e400", "an array", "null".</summary>
    public static string Describe(JsonElement value) => value.ValueKind switch
    {
        JsonValueKind.String => $"the string '{Shorten(value.GetString()!)}'",
        JsonValueKind.Number => $"the number {Shorten(value.GetRawText())}",
        JsonValueKind.True => "true",
        JsonValueKind.False => "false",
        JsonValueKind.Array => value.GetArrayLength() == 0 ? "an empty array" : "an array",
        JsonValueKind.Object => "an object",
        _ => "null",
    };

    private static string Shorten(string text) => text.Length <= 40 ? text : string.Concat(text.AsSpan(0, 37), "…");
}
