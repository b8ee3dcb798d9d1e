using System.Net;
using System.Net.Http.Json;

namespace Pipeline.Web.Tests;

/// <summary>Runs launched through the API read files only under Pipeline:DataRoots; the CLI is not restricted.</summary>
public sealed class DataRootsApiTests : IClassFixture<DataRootsApiTests.Factory>
{
    private readonly Factory _factory;
    private readonly HttpClient _http;

    public DataRootsApiTests(Factory factory)
    {
        _factory = factory;
        _http = factory.CreateClient();
    }

    /// <summary>One data root holding a dataset folder and a link out of it; no worker, so launched runs only wait.</summary>
    public sealed class Factory : WebFactory
    {
        public Factory()
        {
            Directory.CreateDirectory(Path.Combine(Root, "pets", "cat"));
            Directory.CreateDirectory(Outside);
            File.CreateSymbolicLink(Path.Combine(Root, "escape"), Outside);
        }

        public string Root => Path.Combine(DataFolder, "data-root");

        public string Outside => Path.Combine(DataFolder, "outside");

        protected override IEnumerable<(string Key, string Value)> Settings() =>
            [("Pipeline:DataRoots:0", Root), ("Pipeline:Web:RunWorker", "false")];
    }

    private static object FolderSpec(string path) =>
        new { spec = new { name = "folder", stages = new { shards = new { kind = "shard", @params = new { source = new { kind = "folder", path } } } } } };

    [Fact]
    public async Task An_inline_spec_whose_folder_is_outside_the_data_roots_is_refused_naming_the_field()
    {
        var response = await _http.PostAsJsonAsync("/api/runs", FolderSpec("/etc"));
        var body = await response.Content.ReadAsStringAsync();

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        Assert.Contains("\"stages.shards.params.source.path\"", body, StringComparison.Ordinal);
        Assert.Contains($"'/etc' is outside Pipeline:DataRoots ({_factory.Root}); put the data under a data root or add its folder to Pipeline:DataRoots", body, StringComparison.Ordinal);
    }

    [Fact]
    public async Task An_inline_spec_whose_folder_is_under_a_data_root_is_launched()
    {
        var response = await _http.PostAsJsonAsync("/api/runs", FolderSpec(Path.Combine(_factory.Root, "pets")));

        Assert.Equal(HttpStatusCode.Created, response.StatusCode);
    }

    [Fact]
    public async Task A_symlink_inside_a_data_root_that_points_outside_is_refused()
    {
        var response = await _http.PostAsJsonAsync("/api/runs", FolderSpec(Path.Combine(_factory.Root, "escape")));
        var body = await response.Content.ReadAsStringAsync();

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        Assert.Contains("stages.shards.params.source.path", body, StringComparison.Ordinal);
        Assert.Contains($"resolves to '{_factory.Outside}'", body, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_preset_is_checked_after_its_set_overrides_and_with_its_own_default_paths()
    {
        var overridden = await _http.PostAsJsonAsync("/api/runs", new { preset = "shards-synthetic", set = new[] { "stages.shards.params.source={\"kind\":\"folder\",\"path\":\"/root\"}" } });
        var fashionMnist = await _http.PostAsJsonAsync("/api/runs", new { preset = "shards-fashion-mnist" });
        var inside = await _http.PostAsJsonAsync("/api/runs", new { preset = "shards-fashion-mnist", set = new[] { $"stages.shards.params.source.path={_factory.Root}/pets" } });

        Assert.Equal(HttpStatusCode.BadRequest, overridden.StatusCode);
        Assert.Contains("'/root' is outside Pipeline:DataRoots", await overridden.Content.ReadAsStringAsync(), StringComparison.Ordinal);
        Assert.Equal(HttpStatusCode.BadRequest, fashionMnist.StatusCode);
        Assert.Contains("'/usr/share/datasets/fashion-mnist' is outside", await fashionMnist.Content.ReadAsStringAsync(), StringComparison.Ordinal);
        Assert.Equal(HttpStatusCode.Created, inside.StatusCode);
    }
}
