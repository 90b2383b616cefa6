// REST v2 contacts as the bridge reads them. Members: Keap's OpenAPI document for REST v2 (github.com/infusionsoft/
// keap-sdk, sdks/v2/swagger.yml, Contact and ListContactsResponse).
#include "keap_bridge_contacts.h"

#include <limits>

namespace keyrelay::keap::bridge {

using json = nlohmann::json;

std::optional<size_t> entry_key(std::string_view name) {
    for (size_t i = 0; i < kEntryKeyCount; ++i) {
        if (kEntryKeys[i] == name) return i;
    }
    return std::nullopt;
}

namespace {

enum class Member { id, owner_id, text, list, company, tag_ids, other };

struct MemberInfo {
    Member kind = Member::other;
    std::optional<std::string> RestContact::*text = nullptr;
    std::vector<RestEntry> RestContact::*list = nullptr;
};

MemberInfo member_of(std::string_view name) {
    if (name == "id") return {Member::id};
    if (name == "owner_id") return {Member::owner_id};
    if (name == "given_name") return {Member::text, &RestContact::given_name};
    if (name == "family_name") return {Member::text, &RestContact::family_name};
    if (name == "job_title") return {Member::text, &RestContact::job_title};
    if (name == "create_time") return {Member::text, &RestContact::create_time};
    if (name == "update_time") return {Member::text, &RestContact::update_time};
    if (name == "email_addresses") return {Member::list, nullptr, &RestContact::email_addresses};
    if (name == "phone_numbers") return {Member::list, nullptr, &RestContact::phone_numbers};
    if (name == "addresses") return {Member::list, nullptr, &RestContact::addresses};
    if (name == "company") return {Member::company};
    if (name == "tag_ids") return {Member::tag_ids};
    return {};
}

// Forgets what an earlier member of the same name set: the last one wins, as in a parsed object.
void reset(RestContact& c, const MemberInfo& m) {
    switch (m.kind) {
        case Member::id: c.id.reset(); break;
        case Member::owner_id: c.owner_id.reset(); break;
        case Member::text: (c.*m.text).reset(); break;
        case Member::list: (c.*m.list).clear(); break;
        case Member::company: c.company_name.reset(); break;
        case Member::tag_ids: c.tag_ids.clear(); break;
        case Member::other: break;
    }
}

// The streaming reader of a list page: a stack of what each open container is, and what the member being read is
// (looked up once, when its key arrives).
class PageReader : public nlohmann::json_sax<json> {
public:
    explicit PageReader(const std::function<void(const RestContact&)>& each) : each_(each) {}
    bool has_list() const { return has_list_; }
    std::string& next_page_token() { return token_; }

    bool null() override { return scalar(Scalar{}); }
    bool boolean(bool) override { return scalar(Scalar{}); }
    bool number_integer(number_integer_t v) override { return scalar(Scalar{Scalar::integer, v}); }
    bool number_unsigned(number_unsigned_t v) override {
        if (v > static_cast<number_unsigned_t>(std::numeric_limits<int64_t>::max())) return scalar(Scalar{});
        return scalar(Scalar{Scalar::integer, static_cast<int64_t>(v)});
    }
    bool number_float(number_float_t, const string_t&) override { return scalar(Scalar{}); }
    bool binary(binary_t&) override { return scalar(Scalar{}); }
    bool string(string_t& s) override { return scalar(Scalar{Scalar::string, 0, &s}); }

    bool key(string_t& k) override {
        Open& at = stack_.back();
        switch (at.frame) {
            case Frame::top: at.key = k == "contacts" ? kContactsKey : k == "next_page_token" ? kTokenKey : kOther; break;
            case Frame::contact: at.member = member_of(k); break;
            case Frame::entry: {
                const auto index = entry_key(k);
                at.key = index ? static_cast<int>(*index) : kOther;
                break;
            }
            case Frame::company: at.key = k == "company_name" ? kCompanyNameKey : kOther; break;
            default: break;
        }
        return true;
    }
    bool start_object(std::size_t) override { return open(true); }
    bool start_array(std::size_t) override { return open(false); }
    bool end_object() override { return close(); }
    bool end_array() override { return close(); }
    bool parse_error(std::size_t, const std::string&, const json::exception&) override { return false; }

private:
    // What an open container is.
    enum class Frame { top, contacts, contact, list, entry, company, tags, skipped };
    static constexpr int kOther = -1, kContactsKey = 0, kTokenKey = 1, kCompanyNameKey = 0;
    struct Open {
        Frame frame;
        int key = kOther;    // top, entry, company: the member whose value comes next
        MemberInfo member;   // contact: the member whose value comes next
    };
    struct Scalar {
        enum Kind { other, integer, string } kind = other;
        int64_t i = 0;
        string_t* s = nullptr;
    };

    RestContact& contact() { return current_; }

    // Empties the reused contact, keeping what its lists have allocated.
    void clear_contact() {
        RestContact& c = current_;
        c.id.reset();
        c.owner_id.reset();
        for (auto* text : {&c.given_name, &c.family_name, &c.job_title, &c.create_time, &c.update_time,
                           &c.company_name}) {
            text->reset();
        }
        c.email_addresses.clear();
        c.phone_numbers.clear();
        c.addresses.clear();
        c.tag_ids.clear();
    }

    void empty_contact() {
        clear_contact();
        each_(current_);
    }

    static std::optional<int64_t> as_id(const Scalar& v) {
        if (v.kind == Scalar::integer) return v.i;
        if (v.kind == Scalar::string) return json_util::parse_int64(*v.s);
        return std::nullopt;
    }

    bool scalar(const Scalar& v) {
        if (stack_.empty()) return true;   // a bare scalar document: no list (has_list_ stays false)
        Open& at = stack_.back();
        switch (at.frame) {
            case Frame::top:
                if (at.key == kTokenKey) {
                    token_ = v.kind == Scalar::string ? *v.s : std::string();
                } else if (at.key == kContactsKey) {
                    return contacts_member(false);
                }
                return true;
            case Frame::contacts:
                empty_contact();   // not an object: a contact with nothing the map reads
                return true;
            case Frame::contact: {
                const MemberInfo& m = at.member;
                reset(contact(), m);
                if (m.kind == Member::id) contact().id = as_id(v);
                if (m.kind == Member::owner_id) contact().owner_id = as_id(v);
                if (m.kind == Member::text && v.kind == Scalar::string) contact().*m.text = *v.s;
                return true;
            }
            case Frame::entry:
                if (at.key != kOther) {
                    auto& slot = entry_->strings[static_cast<size_t>(at.key)];
                    if (v.kind == Scalar::string) {
                        slot = *v.s;
                    } else {
                        slot.reset();
                    }
                }
                return true;
            case Frame::company:
                if (at.key == kCompanyNameKey) {
                    contact().company_name.reset();
                    if (v.kind == Scalar::string) contact().company_name = *v.s;
                }
                return true;
            case Frame::tags:
                if (auto id = as_id(v)) contact().tag_ids.push_back(*id);
                return true;
            case Frame::list:
            case Frame::skipped:
                return true;
        }
        return true;
    }

    bool open(bool object) {
        Frame next = Frame::skipped;
        if (stack_.empty()) {
            next = object ? Frame::top : Frame::skipped;
        } else {
            Open& at = stack_.back();
            switch (at.frame) {
                case Frame::top:
                    if (at.key == kContactsKey) {
                        if (!contacts_member(!object)) return false;
                        if (!object) next = Frame::contacts;
                    } else if (at.key == kTokenKey) {
                        token_.clear();
                    }
                    break;
                case Frame::contacts:
                    if (object) {
                        clear_contact();
                        next = Frame::contact;
                    } else {
                        empty_contact();
                    }
                    break;
                case Frame::contact: {
                    const MemberInfo& m = at.member;
                    reset(contact(), m);
                    if (m.kind == Member::list && !object) {
                        list_ = &(contact().*m.list);
                        next = Frame::list;
                    } else if (m.kind == Member::company && object) {
                        next = Frame::company;
                    } else if (m.kind == Member::tag_ids && !object) {
                        next = Frame::tags;
                    }
                    break;
                }
                case Frame::list:
                    if (object) {
                        list_->emplace_back();
                        entry_ = &list_->back();
                        next = Frame::entry;
                    }
                    break;
                case Frame::entry:
                    if (at.key != kOther) entry_->strings[static_cast<size_t>(at.key)].reset();
                    break;
                case Frame::company:
                    if (at.key == kCompanyNameKey) contact().company_name.reset();
                    break;
                case Frame::tags:
                case Frame::skipped:
                    break;
            }
        }
        stack_.push_back(Open{next, kOther, MemberInfo{}});
        return true;
    }

    bool close() {
        if (stack_.back().frame == Frame::contact) each_(current_);
        stack_.pop_back();
        return true;
    }

    // The top-level "contacts" member: there must be one, an array. Its contacts are handed on as they are read, so
    // a second one (which a parsed object would let replace the first) is refused.
    bool contacts_member(bool is_array) {
        if (seen_contacts_) return false;
        seen_contacts_ = true;
        has_list_ = is_array;
        return true;
    }

    const std::function<void(const RestContact&)>& each_;
    RestContact current_;
    std::string token_;
    bool seen_contacts_ = false;
    std::vector<Open> stack_;
    std::vector<RestEntry>* list_ = nullptr;   // the list being read (Frame::list and below)
    RestEntry* entry_ = nullptr;               // the entry being read (Frame::entry)
    bool has_list_ = false;
};

std::optional<int64_t> id_of(const json& v) { return json_util::as_int64(v); }

std::vector<RestEntry> entries_of(const json& list) {
    std::vector<RestEntry> out;
    if (!list.is_array()) return out;
    for (const auto& e : list) {
        if (!e.is_object()) continue;
        RestEntry entry;
        for (const auto& [k, v] : e.items()) {
            const auto index = entry_key(k);
            if (index && v.is_string()) entry.strings[*index] = v.get_ref<const std::string&>();
        }
        out.push_back(std::move(entry));
    }
    return out;
}

}  // namespace

RestContact rest_contact(const json& contact) {
    RestContact c;
    if (!contact.is_object()) return c;
    for (const auto& [name, v] : contact.items()) {
        const MemberInfo m = member_of(name);
        switch (m.kind) {
            case Member::id: c.id = id_of(v); break;
            case Member::owner_id: c.owner_id = id_of(v); break;
            case Member::text:
                if (v.is_string()) c.*m.text = v.get_ref<const std::string&>();
                break;
            case Member::list: c.*m.list = entries_of(v); break;
            case Member::company:
                if (auto name_text = json_util::get_string(v, "company_name")) c.company_name = *name_text;
                break;
            case Member::tag_ids:
                if (v.is_array()) {
                    for (const auto& t : v) {
                        if (auto id = json_util::as_int64(t)) c.tag_ids.push_back(*id);
                    }
                }
                break;
            case Member::other: break;
        }
    }
    return c;
}

std::optional<std::string> read_contact_page(std::string_view body,
                                             const std::function<void(const RestContact&)>& each) {
    PageReader reader(each);
    const bool parsed = json::sax_parse(body.begin(), body.end(), &reader, json::input_format_t::json, true, false);
    if (!parsed || !reader.has_list()) return std::nullopt;
    return std::move(reader.next_page_token());
}

}  // namespace keyrelay::keap::bridge
