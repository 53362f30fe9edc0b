//! The data every new user starts with: one cash account and five system categories.

pub struct DefaultAccount {
    pub name: &'static str,
    pub kind: &'static str,
    pub currency: &'static str,
    pub icon: &'static str,
    pub color: &'static str,
}

pub const DEFAULT_ACCOUNT: DefaultAccount = DefaultAccount {
    name: "Наличные",
    kind: "cash",
    currency: "RUB",
    icon: "💵",
    color: "#95E1D3",
};

pub struct DefaultCategory {
    pub name: &'static str,
    pub icon: &'static str,
    pub color: &'static str,
    pub kind: &'static str,
}

pub const DEFAULT_CATEGORIES: [DefaultCategory; 5] = [
    DefaultCategory {
        name: "Продукты",
        icon: "🛒",
        color: "#FF6B6B",
        kind: "expense",
    },
    DefaultCategory {
        name: "Транспорт",
        icon: "🚌",
        color: "#4ECDC4",
        kind: "expense",
    },
    DefaultCategory {
        name: "Развлечения",
        icon: "🎮",
        color: "#45B7D1",
        kind: "expense",
    },
    DefaultCategory {
        name: "Зарплата",
        icon: "💰",
        color: "#95E1D3",
        kind: "income",
    },
    DefaultCategory {
        name: "Подработка",
        icon: "💵",
        color: "#F38181",
        kind: "income",
    },
];
