using System.Text.Json;
using System.Text.Json.Nodes;

namespace Pipeline.Jobs.Tests.RunSpecs;

/// <summary>
/// Seeded, deterministic mistakes made to a real RunSpec: one to three edits of the kinds people and scripts make (a
/// field deleted, nulled, retyped, renamed, duplicated; an object where an array goes; numbers too large for any type;
/// "NaN" and friends as strings; deep nesting; unicode names; broken dependencies), some as <c>--set</c> overrides.
/// The same seed gives the same case, and <see cref="Case.Description"/> says what was done, to replay a failure.
/// </summary>
internal sealed class RunSpecMutator(int seed)
{
    public sealed record Case(string Json, IReadOnlyList<string> Overrides, string Description);

    private sealed record Location(JsonNode Container, string? Key, int Index, string Path, JsonNode? Value);

    private enum Edit
    {
        Delete, SetNull, WrongType, EmptyArray, HugeNumber, NumberishString, DuplicateItem, RenameKey, AddUnknownKey,
        ObjectToArray, ArrayToObject, DeepNesting, UnicodeStageName, BreakDependencies, BreakStage, Override,
    }

    private static readonly string[] WrongTypes = ["0", "-1", "1.5", "\"text\"", "true", "false", "[]", "{}", "[1, \"a\", null]", "{\"x\": 1}", "[[]]", "\"\""];
    private static readonly string[] HugeNumbers =
        ["1e400", "-1e400", "1e30", "-1e30", "99999999999999999999", "9223372036854775808", "2147483648", "-2147483649", "4.9e-324", "1.7976931348623157e308", "3.5e38", "1e-400"];
    private static readonly string[] NumberishStrings = ["NaN", "Infinity", "-Infinity", "nan", "inf", "1", "-0", "1e400", "0x10", " 7 ", "", "null", "true", "ü名🙂", "\u0000", "a.b", "../../etc/passwd"];
    private static readonly string[] UnicodeNames = ["ステージ", "ünïcödé", "a b", "", "UPPER", "tab\there", "emoji-🙂", "ǅ", new string('a', 65), "-leading-dash", "名"];
    private static readonly string[] OverrideValues = ["abc", "1e400", "NaN", "null", "[]", "{}", "{\"a\": 1, \"a\": 2}", "[1, 2", "\"\\ud800\"", "-5", "true", "99999999999", "\"\"", "{\"kind\": \"probe\"}", "[null]", "0.5"];
    private static readonly string[] BrokenAssignments = ["no-equals-sign", "=5", "stages..params=1", ".=1", "stages. .x=1", "name.first=x", "stages.x.depends_on.0=a"];

    private readonly Random _random = new(seed);

    public Case Mutate(string preset)
    {
        var root = JsonNode.Parse(preset)!.AsObject();
        var done = new List<string>();
        var overrides = new List<string>();
        var edits = _random.Next(4) switch { 0 => 2, 1 => 3, _ => 1 };
        for (var i = 0; i < edits; i++)
        {
            var edit = (Edit)_random.Next(Enum.GetValues<Edit>().Length);
            if (edit == Edit.Override) overrides.Add(RandomOverride(root, done));
            else Apply(edit, root, done);
        }
        var json = root.ToJsonString(new JsonSerializerOptions { MaxDepth = 1024, WriteIndented = _random.Next(2) == 0 });
        return new Case(json, overrides, string.Join("; ", done));
    }

    private void Apply(Edit edit, JsonObject root, List<string> done)
    {
        switch (edit)
        {
            case Edit.UnicodeStageName:
                RenameStage(root, done);
                return;
            case Edit.BreakDependencies:
                BreakDependencies(root, done);
                return;
            case Edit.BreakStage:
                BreakStage(root, done);
                return;
        }
        var at = PickLocation(root, edit);
        if (at is null)
        {
            // This preset has nothing the edit applies to (no arrays to duplicate, say): retype something instead.
            (edit, at) = (Edit.WrongType, PickLocation(root, Edit.WrongType)!);
        }
        switch (edit)
        {
            case Edit.Delete:
                Remove(at);
                done.Add($"delete {at.Path}");
                break;
            case Edit.SetNull:
                Set(at, null);
                done.Add($"set {at.Path} to null");
                break;
            case Edit.WrongType:
                SetRaw(at, Pick(WrongTypes), done);
                break;
            case Edit.EmptyArray:
                SetRaw(at, "[]", done);
                break;
            case Edit.HugeNumber:
                SetRaw(at, Pick(HugeNumbers), done);
                break;
            case Edit.NumberishString:
                var s = Pick(NumberishStrings);
                Set(at, JsonValue.Create(s));
                done.Add($"set {at.Path} to the string {JsonSerializer.Serialize(s)}");
                break;
            case Edit.DuplicateItem:
                var array = at.Value as JsonArray ?? at.Container as JsonArray;
                if (array is null || array.Count == 0)
                {
                    SetRaw(at, "[\"x\", \"x\"]", done);
                    break;
                }
                var item = array[_random.Next(array.Count)];
                array.Insert(_random.Next(array.Count + 1), item?.DeepClone());
                done.Add($"duplicate an item of the array at {(at.Value is JsonArray ? at.Path : ParentPath(at.Path))}");
                break;
            case Edit.RenameKey:
                var name = at.Key!;
                var renamed = _random.Next(6) switch
                {
                    0 => name + "_x",
                    1 => name.ToUpperInvariant(),
                    2 => ToCamelCase(name),
                    3 => "",
                    4 => name + "ü",
                    _ => name.Replace('_', '-'),
                };
                var parent = at.Container.AsObject();
                if (parent.ContainsKey(renamed)) renamed += "2";
                parent.Remove(name);
                parent[renamed] = at.Value?.DeepClone();
                done.Add($"rename {at.Path} to '{renamed}'");
                break;
            case Edit.AddUnknownKey:
                var target = at.Value as JsonObject ?? (at.Container as JsonObject)!;
                var key = _random.Next(3) switch { 0 => "unknown_field", 1 => "Seed", _ => "ü" };
                if (!target.ContainsKey(key)) target[key] = JsonNode.Parse(Pick(WrongTypes));
                done.Add($"add '{key}' to the object at {(at.Value is JsonObject ? at.Path : ParentPath(at.Path))}");
                break;
            case Edit.ObjectToArray:
                Set(at, _random.Next(2) == 0 ? new JsonArray() : new JsonArray(at.Value?.DeepClone()));
                done.Add($"replace the object at {at.Path} by an array");
                break;
            case Edit.ArrayToObject:
                var first = at.Value is JsonArray { Count: > 0 } a ? a[0]?.DeepClone() : null;
                Set(at, new JsonObject { ["0"] = first });
                done.Add($"replace the array at {at.Path} by an object");
                break;
            case Edit.DeepNesting:
                var depth = Pick([3, 40, 63, 100, 300]);
                var nested = at.Value?.DeepClone();
                for (var i = 0; i < depth; i++) nested = _random.Next(2) == 0 ? new JsonArray(nested) : new JsonObject { ["deeper"] = nested };
                Set(at, nested);
                done.Add($"nest {at.Path} {depth} levels deeper");
                break;
        }
    }

    /// <summary>Half the edits land inside some stage's params, where most fields are; the rest anywhere.</summary>
    private Location? PickLocation(JsonObject root, Edit edit)
    {
        var all = Locations(root, "").ToList();
        var fitting = edit switch
        {
            Edit.RenameKey => all.Where(l => l.Key is not null).ToList(),
            Edit.DuplicateItem => all.Where(l => l.Value is JsonArray || l.Container is JsonArray).ToList(),
            Edit.AddUnknownKey => all.Where(l => l.Value is JsonObject || l.Container is JsonObject).ToList(),
            Edit.ObjectToArray => all.Where(l => l.Value is JsonObject).ToList(),
            Edit.ArrayToObject => all.Where(l => l.Value is JsonArray).ToList(),
            Edit.HugeNumber or Edit.NumberishString => all.Where(l => l.Value is JsonValue { } v && v.GetValueKind() == JsonValueKind.Number).ToList() is { Count: > 0 } numbers && _random.Next(4) > 0 ? numbers : all,
            _ => all,
        };
        var inParams = fitting.Where(l => l.Path.Contains(".params.", StringComparison.Ordinal)).ToList();
        var pool = inParams.Count > 0 && _random.Next(2) == 0 ? inParams : fitting;
        return pool.Count == 0 ? null : pool[_random.Next(pool.Count)];
    }

    private static IEnumerable<Location> Locations(JsonNode node, string path)
    {
        switch (node)
        {
            case JsonObject o:
                foreach (var (key, value) in o.ToList())
                {
                    var at = path.Length == 0 ? key : $"{path}.{key}";
                    yield return new Location(o, key, -1, at, value);
                    if (value is not null) foreach (var l in Locations(value, at)) yield return l;
                }
                break;
            case JsonArray a:
                for (var i = 0; i < a.Count; i++)
                {
                    var at = $"{path}[{i}]";
                    yield return new Location(a, null, i, at, a[i]);
                    if (a[i] is { } item) foreach (var l in Locations(item, at)) yield return l;
                }
                break;
        }
    }

    private void RenameStage(JsonObject root, List<string> done)
    {
        if (root["stages"] is not JsonObject { Count: > 0 } stages)
        {
            done.Add("rename a stage: no stages object");
            return;
        }
        var old = stages.ElementAt(_random.Next(stages.Count)).Key;
        var name = Pick(UnicodeNames);
        if (stages.ContainsKey(name)) return;
        var stage = stages[old]?.DeepClone();
        stages.Remove(old);
        stages[name] = stage;
        var references = _random.Next(2) == 0;
        if (references)
        {
            foreach (var (_, s) in stages)
            {
                if (s is JsonObject { } other && other["depends_on"] is JsonArray deps)
                {
                    for (var i = 0; i < deps.Count; i++)
                    {
                        if (deps[i] is JsonValue v && v.GetValueKind() == JsonValueKind.String && v.GetValue<string>() == old) deps[i] = name;
                    }
                }
            }
        }
        done.Add($"rename stage '{old}' to {JsonSerializer.Serialize(name)}{(references ? " and its references" : "")}");
    }

    private void BreakDependencies(JsonObject root, List<string> done)
    {
        if (root["stages"] is not JsonObject { Count: > 0 } stages)
        {
            done.Add("break dependencies: no stages object");
            return;
        }
        var (name, node) = stages.ElementAt(_random.Next(stages.Count));
        if (node is not JsonObject stage)
        {
            done.Add($"break dependencies: stage '{name}' is not an object");
            return;
        }
        if (stage["depends_on"] is not JsonArray deps) stage["depends_on"] = deps = [];
        var other = stages.ElementAt(_random.Next(stages.Count)).Key;
        switch (_random.Next(7))
        {
            case 0:
                deps.Add(other);
                deps.Add(other);
                done.Add($"stages.{name}.depends_on lists '{other}' twice");
                break;
            case 1:
                deps.Add(name);
                done.Add($"stages.{name} depends on itself");
                break;
            case 2:
                deps.Add("ghost");
                done.Add($"stages.{name} depends on a stage that does not exist");
                break;
            case 3:
                deps.Add(null);
                done.Add($"stages.{name}.depends_on holds null");
                break;
            case 4:
                deps.Add(_random.Next(2) == 0 ? "" : " ");
                done.Add($"stages.{name}.depends_on holds an empty name");
                break;
            case 5:
                if (stages[other] is JsonObject o)
                {
                    if (o["depends_on"] is not JsonArray back) o["depends_on"] = back = [];
                    back.Add(name);
                    deps.Add(other);
                }
                done.Add($"stages.{name} and stages.{other} depend on each other");
                break;
            default:
                stage["depends_on"] = JsonNode.Parse(Pick(["\"shards\"", "{}", "[[\"a\"]]", "[1]", "null"]));
                done.Add($"stages.{name}.depends_on set to {stage["depends_on"]?.ToJsonString() ?? "null"}");
                break;
        }
    }

    private void BreakStage(JsonObject root, List<string> done)
    {
        switch (_random.Next(6))
        {
            case 0:
                if (root["stages"] is JsonObject { Count: > 0 } stages)
                {
                    var name = stages.ElementAt(_random.Next(stages.Count)).Key;
                    stages[name] = JsonNode.Parse(Pick(["null", "5", "\"probe\"", "[]", "true"]));
                    done.Add($"stages.{name} set to {stages[name]?.ToJsonString() ?? "null"}");
                }
                break;
            case 1:
                root["stages"] = JsonNode.Parse(Pick(["null", "[]", "{}", "\"smoke\"", "[{\"kind\": \"probe\"}]"]));
                done.Add($"stages set to {root["stages"]?.ToJsonString() ?? "null"}");
                break;
            case 2:
                root.Remove("name");
                done.Add("delete name");
                break;
            case 3:
                root[Pick(["name", "description"])] = JsonNode.Parse(Pick(["null", "42", "[]", "{}", "\"\"", "\"   \""]));
                done.Add("retype name or description");
                break;
            case 4:
                if (root["stages"] is JsonObject { Count: > 0 } s && s.ElementAt(_random.Next(s.Count)) is var (n, st) && st is JsonObject so)
                {
                    so["kind"] = JsonNode.Parse(Pick(["null", "\"teleport\"", "\"PROBE\"", "7", "\"\""]));
                    done.Add($"stages.{n}.kind set to {so["kind"]?.ToJsonString() ?? "null"}");
                }
                break;
            default:
                if (root["stages"] is JsonObject { Count: > 0 } p && p.ElementAt(_random.Next(p.Count)) is var (m, pt) && pt is JsonObject po)
                {
                    po["params"] = JsonNode.Parse(Pick(["null", "[]", "\"{}\"", "5", "{}", "[{}]"]));
                    done.Add($"stages.{m}.params set to {po["params"]?.ToJsonString() ?? "null"}");
                }
                break;
        }
    }

    /// <summary>A <c>--set</c> of an existing or new field (only through objects, as the CLI can address), or a broken one.</summary>
    private string RandomOverride(JsonObject root, List<string> done)
    {
        string assignment;
        if (_random.Next(6) == 0) assignment = Pick(BrokenAssignments);
        else
        {
            var paths = Locations(root, "").Where(l => !l.Path.Contains('[', StringComparison.Ordinal) && !l.Key!.Contains('.', StringComparison.Ordinal)).Select(l => l.Path).ToList();
            var path = paths.Count == 0 || _random.Next(5) == 0 ? "stages.extra.params.seed" : paths[_random.Next(paths.Count)];
            if (_random.Next(8) == 0) path += string.Concat(Enumerable.Repeat(".deeper", 70));
            assignment = $"{path}={Pick(OverrideValues)}";
        }
        done.Add($"--set {assignment}");
        return assignment;
    }

    private static void Remove(Location at)
    {
        if (at.Container is JsonObject o) o.Remove(at.Key!);
        else at.Container.AsArray().RemoveAt(at.Index);
    }

    private static void Set(Location at, JsonNode? value)
    {
        if (at.Container is JsonObject o) o[at.Key!] = value;
        else at.Container.AsArray()[at.Index] = value;
    }

    private static void SetRaw(Location at, string json, List<string> done)
    {
        Set(at, JsonNode.Parse(json));
        done.Add($"set {at.Path} to {json}");
    }

    private static string ParentPath(string path)
    {
        var cut = Math.Max(path.LastIndexOf('.'), path.LastIndexOf('['));
        return cut <= 0 ? "(root)" : path[..cut];
    }

    private static string ToCamelCase(string name)
    {
        var parts = name.Split('_');
        return parts[0] + string.Concat(parts.Skip(1).Select(p => p.Length == 0 ? "" : char.ToUpperInvariant(p[0]) + p[1..]));
    }

    private T Pick<T>(IReadOnlyList<T> items) => items[_random.Next(items.Count)];
}
